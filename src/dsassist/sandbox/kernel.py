"""A persistent Jupyter kernel that runs cells and captures everything they produce."""

from __future__ import annotations

import ast
import base64
import hashlib
import json
import os
import queue
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from jupyter_client.manager import KernelManager

from dsassist.messages import ErrorInfo, Execution, KernelState, Output

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_RECORD_MIME = re.compile(r"application/vnd\.dsassist\.[a-z_]+\+json")

# Runs inside the kernel to describe its namespace; underscore names stay out of the summary.
_STATE_PROBE = r"""
def _dsassist_state():
    import json, sys, types

    def describe(name, value):
        item = {'name': name, 'type': type(value).__name__}
        if callable(value) and not hasattr(value, 'fit'):
            if isinstance(value, types.FunctionType):
                item['type'] = 'function'
            return item
        shape = getattr(value, 'shape', None)
        if shape is not None:
            item['shape'] = str(tuple(shape))
        elif isinstance(value, (list, tuple, dict, set)):
            item['shape'] = f'len {len(value)}'
        cols = getattr(value, 'columns', None)
        if cols is not None:
            item['columns'] = [str(c) for c in list(cols)[:100]]
        dtypes = getattr(value, 'dtypes', None)
        if dtypes is not None and hasattr(dtypes, 'items'):
            counts = {}
            for dt in dtypes.values:
                counts[str(dt)] = counts.get(str(dt), 0) + 1
            item['detail'] = 'dtypes ' + ', '.join(f'{k}x{v}' for k, v in counts.items())
        elif isinstance(value, dict):
            item['detail'] = 'keys ' + ', '.join(map(str, list(value)[:12]))
        elif isinstance(value, (int, float, str, bool)):
            item['detail'] = '= ' + repr(value)[:60]
        return item

    ns, hidden, out = get_ipython().user_ns, set(get_ipython().user_ns_hidden), []
    for name, value in list(ns.items()):
        if name.startswith('_') or name in hidden or isinstance(value, types.ModuleType):
            continue
        try:
            out.append(describe(name, value))
        except Exception:  # an object with odd attributes still gets a line
            out.append({'name': name, 'type': type(value).__name__})
    imported = sorted(n for n, v in ns.items() if isinstance(v, types.ModuleType) and not n.startswith('_'))
    return json.dumps({'variables': out, 'modules': imported})
"""


class Sandbox:
    """One stateful kernel whose working folder is `workdir`.

    >>> with Sandbox(workdir) as sb:
    ...     r = sb.execute("x = 1 + 1; print(x)", timeout=30)
    ...     r.ok, r.stdout
    (True, '2\\n')
    """

    def __init__(
        self,
        workdir: str | os.PathLike[str],
        *,
        kernel_name: str = "python3",
        output_kb: int = 256,
        startup_timeout: float = 60.0,
        interrupt_grace_s: float = 5.0,
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self.artifacts = self.workdir / "artifacts"
        self.kernel_name = kernel_name
        self.output_limit = output_kb * 1024
        self.startup_timeout = startup_timeout
        self.interrupt_grace_s = interrupt_grace_s
        self._km: KernelManager | None = None
        self._kc: Any = None
        self._sockets = ""

    # ---- lifecycle ----------------------------------------------------------------------

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        # IPC sockets are about a millisecond faster per round-trip than loopback TCP
        km = KernelManager(kernel_name=self.kernel_name, transport="ipc")
        self._sockets = tempfile.mkdtemp(prefix="dsassist-kernel-")
        km.ip = os.path.join(self._sockets, "kernel")
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        env.pop("MPLBACKEND", None)  # ipykernel's inline backend turns figures into PNG outputs
        with open(self.workdir / "kernel.log", "ab") as log:
            km.start_kernel(cwd=str(self.workdir), env=env, stdout=log, stderr=log)
        kc = km.client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=self.startup_timeout)
        except RuntimeError:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
            raise
        self._km, self._kc = km, kc
        self._run_silent(_STATE_PROBE)

    def close(self) -> None:
        if self._km is None:
            return
        self._kc.stop_channels()
        self._km.shutdown_kernel(now=True)
        self._km = self._kc = None
        shutil.rmtree(self._sockets, ignore_errors=True)

    def restart(self) -> None:
        """A fresh kernel: the namespace is lost."""
        self.close()
        self.start()

    @property
    def alive(self) -> bool:
        return self._km is not None and self._km.is_alive()

    # ---- running code -------------------------------------------------------------------

    def execute(self, code: str, timeout: float | None = None) -> Execution:
        """Run one cell; never raises for errors in the cell, a timeout or a dead kernel."""
        if not self.alive:
            self.restart()
        start = time.perf_counter()
        msg_id = self._kc.execute(code, store_history=True, allow_stdin=False)
        collector = _Collector(self.artifacts, self.output_limit)
        deadline = None if timeout is None else start + timeout
        finished = self._collect(msg_id, collector, deadline)
        if not finished:
            if self.alive:
                self._km.interrupt_kernel()
                grace = time.perf_counter() + self.interrupt_grace_s
                if not self._collect(msg_id, collector, grace):
                    self.restart()
            collector.error = ErrorInfo(
                name="Timeout",
                value=f"the cell ran longer than {timeout:.0f}s and was interrupted",
            )
        elif collector.died:
            collector.error = ErrorInfo(name="KernelDied", value="the kernel died while running the cell")
            self.restart()
        return collector.result(time.perf_counter() - start)

    def state(self) -> KernelState:
        """Names, types, shapes and dtypes of what the kernel holds, and its imports."""
        reply = self._run_silent("", user_expressions={"state": "_dsassist_state()"})
        expr = reply["content"]["user_expressions"]["state"]
        if expr.get("status") != "ok":
            return KernelState()
        # the expression's value is a JSON string; text/plain holds its Python repr
        payload = ast.literal_eval(expr["data"]["text/plain"])
        return KernelState.model_validate(json.loads(payload))

    # ---- internals ----------------------------------------------------------------------

    def _run_silent(self, code: str, **kwargs: Any) -> dict[str, Any]:
        msg_id = self._kc.execute(code, silent=True, store_history=False, **kwargs)
        while True:
            reply = self._kc.get_shell_msg(timeout=self.startup_timeout)
            if reply["parent_header"].get("msg_id") == msg_id:
                return reply

    def _collect(self, msg_id: str, collector: _Collector, deadline: float | None) -> bool:
        """Read this cell's messages until the kernel is idle (True) or the deadline (False)."""
        while True:
            wait = 1.0 if deadline is None else min(1.0, deadline - time.perf_counter())
            if wait <= 0:
                return False
            try:
                msg = self._kc.get_iopub_msg(timeout=wait)
            except queue.Empty:
                if not self._km.is_alive():
                    collector.died = True
                    return True
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if collector.handle(msg):
                return True


class _Collector:
    """Accumulates the iopub messages of one cell into an Execution."""

    def __init__(self, artifacts: Path, limit: int) -> None:
        self.artifacts = artifacts
        self.limit = limit
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.outputs: list[Output] = []
        self.error: ErrorInfo | None = None
        self.died = False

    def handle(self, msg: dict[str, Any]) -> bool:
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            (self.stdout if content["name"] == "stdout" else self.stderr).append(content["text"])
        elif kind in ("display_data", "execute_result"):
            self.outputs.extend(self._bundle(content["data"]))
        elif kind == "error":
            self.error = ErrorInfo(
                name=content["ename"],
                value=content["evalue"],
                traceback=[_ANSI.sub("", line) for line in content["traceback"]],
            )
        elif kind == "status" and content["execution_state"] == "idle":
            return True
        return False

    def _bundle(self, data: dict[str, Any]) -> list[Output]:
        """One Output for the richest useful representation in a MIME bundle."""
        for mime, value in data.items():
            if _RECORD_MIME.fullmatch(mime):
                record = value if isinstance(value, dict) else json.loads(value)
                return [Output(mime=mime, data=record)]
        if "image/png" in data:
            raw = base64.b64decode(data["image/png"])
            self.artifacts.mkdir(parents=True, exist_ok=True)
            path = self.artifacts / f"{hashlib.sha256(raw).hexdigest()[:16]}.png"
            path.write_bytes(raw)
            return [Output(mime="image/png", path=str(path.relative_to(self.artifacts.parent)))]
        if "text/plain" in data:
            return [Output(mime="text/plain", text=_truncate(data["text/plain"], self.limit))]
        return []

    def result(self, duration: float) -> Execution:
        return Execution(
            ok=self.error is None,
            stdout=_truncate("".join(self.stdout), self.limit),
            stderr=_truncate("".join(self.stderr), self.limit),
            error=self.error,
            outputs=self.outputs,
            duration_s=duration,
        )


def _truncate(text: str, limit: int) -> str:
    """Keep the head and the tail of an output flood."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n... [{len(text) - limit} characters cut] ...\n{text[-half:]}"
