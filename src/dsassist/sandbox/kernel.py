"""A persistent Jupyter kernel that runs cells and captures everything they produce."""

from __future__ import annotations

import ast
import base64
import collections
import hashlib
import json
import os
import queue
import re
import shutil
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

from jupyter_client.manager import KernelManager

from dsassist.messages import ErrorInfo, Execution, KernelState, Output
from dsassist.sandbox.isolation import KERNEL_UID, Confinement, Isolation, Limits

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


class _ConfinedKernelManager(KernelManager):
    """A kernel manager whose kernel command runs inside the sandbox's confinement."""

    confinement: Confinement | None = None
    writable: list[Path] = []  # noqa: RUF012 - set per instance before start

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        command = super().format_kernel_cmd(extra_arguments)
        assert self.confinement is not None
        if self.confinement.drop_privileges:  # the unprivileged kernel must read its ports and key
            os.chown(self.connection_file, KERNEL_UID, KERNEL_UID)
        return self.confinement.wrap(command, self.writable)


class Sandbox:
    """One stateful kernel, confined, whose working (and only writable) folder is `workdir`.

    >>> with Sandbox(workdir, memory_mb=2048) as sb:
    ...     r = sb.execute("x = 1 + 1; print(x)", timeout=30)
    ...     r.ok, r.stdout
    (True, '2\\n')

    A failed cell says which limit it hit in `r.error.name` (`Timeout`, `MemoryLimit`,
    `CPULimit`, `ProcessLimit`, `FileSizeLimit`, `KernelDied`); after a dead kernel the next
    `execute` runs on a fresh one.
    """

    def __init__(
        self,
        workdir: str | os.PathLike[str],
        *,
        memory_mb: int | None = 4096,
        cpu_s: int | None = None,
        processes: int | None = 256,
        output_kb: int = 256,
        file_mb: int | None = 1024,
        isolation: Isolation = "auto",
        read_only: tuple[str | os.PathLike[str], ...] = (),
        artifacts: str | os.PathLike[str] | None = None,
        kernel_name: str = "python3",
        startup_timeout: float = 60.0,
        interrupt_grace_s: float = 5.0,
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self.artifacts = Path(artifacts).resolve() if artifacts else self.workdir / "artifacts"
        self.limits = Limits(memory_mb=memory_mb, cpu_s=cpu_s, processes=processes, file_mb=file_mb)
        self.output_limit = output_kb * 1024
        self.confinement = Confinement(
            self.workdir, self.limits, isolation, tuple(Path(p) for p in read_only)
        )
        self.kernel_name = kernel_name
        self.startup_timeout = startup_timeout
        self.interrupt_grace_s = interrupt_grace_s
        self._km: _ConfinedKernelManager | None = None
        self._kc: Any = None
        self._sockets = ""

    # ---- lifecycle ----------------------------------------------------------------------

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        self._sockets = tempfile.mkdtemp(prefix="dsassist-kernel-")
        sockets = Path(self._sockets)
        self.confinement.prepare(self.workdir, sockets)
        # IPC sockets are about a millisecond faster per round-trip than loopback TCP
        km = _ConfinedKernelManager(kernel_name=self.kernel_name, transport="ipc")
        km.ip = str(sockets / "kernel")
        km.connection_file = str(sockets / "kernel.json")
        km.confinement, km.writable = self.confinement, [self.workdir, sockets]
        # a signal would reach bubblewrap, not the kernel: interrupt with a control message
        km.kernel_spec.interrupt_mode = "message"
        with open(self.workdir / "kernel.log", "ab") as log:
            km.start_kernel(cwd=str(self.workdir), env=self.confinement.env(), stdout=log, stderr=log)
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
                if not self._collect(msg_id, collector, grace) or collector.died:
                    self.restart()  # the interrupt did not work: kill it
            collector.error = ErrorInfo(
                name="Timeout",
                value=f"the cell ran longer than {timeout:.0f}s and was interrupted",
            )
        elif collector.died:
            collector.error = self._death_cause()
            self.restart()
        elif collector.error is not None:
            collector.error = _name_limit(collector.error)
            if collector.error.name == "ProcessLimit":
                self.restart()  # forked children may still be running: end them all
        return collector.result(time.perf_counter() - start)

    def _death_cause(self) -> ErrorInfo:
        """Why the kernel process ended, from its exit status (bubblewrap passes it on)."""
        process = getattr(self._km.provisioner, "process", None) if self._km else None
        code = process.poll() if process is not None else None
        sig = -code if code is not None and code < 0 else (code - 128 if code and code > 128 else 0)
        if sig == signal.SIGXCPU:
            return ErrorInfo(name="CPULimit", value=f"the kernel used its {self.limits.cpu_s}s of CPU time")
        names = {signal.SIGSEGV: "a segmentation fault", signal.SIGKILL: "SIGKILL (out of memory?)"}
        how = names.get(sig, f"signal {sig}" if sig else f"exit status {code}")
        return ErrorInfo(name="KernelDied", value=f"the kernel died while running the cell: {how}")

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


_LIMIT_ERRORS = (
    ("MemoryLimit", ("MemoryError", "_ArrayMemoryError"), ""),
    ("ProcessLimit", ("BlockingIOError", "OSError"), "Resource temporarily unavailable"),
    ("FileSizeLimit", ("OSError",), "File too large"),
)


def _name_limit(error: ErrorInfo) -> ErrorInfo:
    """An exception that a sandbox limit caused, renamed after the limit (the original kept)."""
    for limit, names, text in _LIMIT_ERRORS:
        if error.name in names and text in error.value:
            return ErrorInfo(name=limit, value=f"{error.name}: {error.value}", traceback=error.traceback)
    return error


class _Capped:
    """Text that keeps its first and last `limit / 2` characters, however much arrives."""

    def __init__(self, limit: int) -> None:
        self.half = limit // 2
        self.head = ""
        self.tail: collections.deque[str] = collections.deque()
        self.tail_len = 0
        self.cut = 0

    def add(self, text: str) -> None:
        if len(self.head) < self.half:
            room = self.half - len(self.head)
            self.head, text = self.head + text[:room], text[room:]
        if not text:
            return
        self.tail.append(text)
        self.tail_len += len(text)
        while self.tail_len - len(self.tail[0]) >= self.half:
            dropped = self.tail.popleft()
            self.tail_len -= len(dropped)
            self.cut += len(dropped)

    def text(self) -> str:
        tail = "".join(self.tail)
        extra = max(0, len(tail) - self.half)
        cut, tail = self.cut + extra, tail[extra:]
        if cut == 0:
            return self.head + tail
        return f"{self.head}\n... [{cut} characters cut] ...\n{tail}"


class _Collector:
    """Accumulates the iopub messages of one cell into an Execution."""

    def __init__(self, artifacts: Path, limit: int) -> None:
        self.artifacts = artifacts
        self.limit = limit
        self.stdout = _Capped(limit)
        self.stderr = _Capped(limit)
        self.outputs: list[Output] = []
        self.error: ErrorInfo | None = None
        self.died = False

    def handle(self, msg: dict[str, Any]) -> bool:
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            (self.stdout if content["name"] == "stdout" else self.stderr).add(content["text"])
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
            stdout=self.stdout.text(),
            stderr=self.stderr.text(),
            error=self.error,
            outputs=self.outputs,
            duration_s=duration,
        )


def _truncate(text: str, limit: int) -> str:
    """Keep the head and the tail of an output flood."""
    capped = _Capped(limit)
    capped.add(text)
    return capped.text()
