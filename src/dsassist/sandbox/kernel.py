"""A persistent Jupyter kernel that runs cells and captures everything they produce."""

from __future__ import annotations

import ast
import base64
import collections
import copy
import hashlib
import json
import os
import queue
import re
import shutil
import signal
import stat
import tempfile
import time
from pathlib import Path
from typing import Any

from jupyter_client.manager import KernelManager

from dsassist.messages import ErrorInfo, Execution, KernelState, Output
from dsassist.sandbox.checkpoint import KERNEL_CODE, Checkpoint
from dsassist.sandbox.isolation import Confinement, Isolation, Limits

CHECKPOINT_TIMEOUT_S = 1800.0  # pickling several GB takes minutes, not hours
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


class _Kernel:
    """One kernel process, its client and its socket folder."""

    def __init__(self, manager: _ConfinedKernelManager, client: Any, sockets: Path) -> None:
        self.manager, self.client, self.sockets = manager, client, sockets

    def wait_ready(self, timeout: float) -> None:
        """Until a kernel_info request has its reply and its idle status on iopub.

        jupyter_client's wait_for_ready also sleeps 0.2 s to flush iopub; the idle status of
        our own request proves the iopub subscription is live, so a pooled kernel is ready
        in milliseconds.
        """
        deadline = time.monotonic() + timeout
        msg_id = self.client.kernel_info()
        while time.monotonic() < deadline:
            try:
                msg = self.client.get_iopub_msg(timeout=0.5)
            except queue.Empty:
                if not self.manager.is_alive():
                    raise RuntimeError("the kernel died while starting; see kernel.log") from None
                msg_id = self.client.kernel_info()  # a request sent before the subscription was lost
                continue
            idle = msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle"
            if idle and msg["parent_header"].get("msg_id") == msg_id:
                return
        raise RuntimeError(f"the kernel did not start within {timeout:.0f}s; see kernel.log")

    def shutdown(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)
        shutil.rmtree(self.sockets, ignore_errors=True)


class _ConfinedKernelManager(KernelManager):
    """A kernel manager whose kernel command runs inside the sandbox's confinement."""

    confinement: Confinement | None = None
    writable: list[Path] = []  # noqa: RUF012 - set per instance before start

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        command = super().format_kernel_cmd(extra_arguments)
        assert self.confinement is not None
        if self.confinement.drop_privileges:  # the unprivileged kernel must read its ports and key
            os.chown(self.connection_file, self.confinement.uid, self.confinement.uid)
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
        log: str | os.PathLike[str] | None = None,
        pool: int = 1,
        preload: tuple[str, ...] = (),
        kernel_name: str = "python3",
        startup_timeout: float = 60.0,
        interrupt_grace_s: float = 5.0,
        uid: int | None = None,
        cores: int | None = None,
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self.artifacts = Path(artifacts).resolve() if artifacts else self.workdir / "artifacts"
        self.checkpoints = self.workdir / ".checkpoints"
        self.log = Path(log).resolve() if log else self.workdir / "kernel.log"
        self.limits = Limits(
            memory_mb=memory_mb, cpu_s=cpu_s, processes=processes, file_mb=file_mb, cores=cores
        )
        self.output_limit = output_kb * 1024
        self.confinement = Confinement(
            self.workdir, self.limits, isolation, tuple(Path(p) for p in read_only), uid
        )
        self.pool_size = pool
        self.preload = preload
        self.kernel_name = kernel_name
        self.startup_timeout = startup_timeout
        self.interrupt_grace_s = interrupt_grace_s
        self.last_checkpoint: Checkpoint | None = None
        self._kernel: _Kernel | None = None
        self._spares: list[_Kernel] = []
        self._closed = False  # closed while a step still ran on it (an interrupted run): no new kernel

    # ---- lifecycle ----------------------------------------------------------------------

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Take a kernel (a pre-started one if the pool has it) and top the pool up."""
        self._closed = False
        self.confinement.prepare(self.workdir)
        while self._spares and not self._spares[0].manager.is_alive():
            self._spares.pop(0).shutdown()  # a spare can die while it waits (a fork bomb elsewhere)
        kernel = self._spares.pop(0) if self._spares else self._launch()
        try:
            kernel.wait_ready(self.startup_timeout)
        except RuntimeError:
            kernel.shutdown()
            raise
        self._kernel = kernel
        self._run_silent(_STATE_PROBE + KERNEL_CODE)
        while len(self._spares) < self.pool_size:
            self._spares.append(self._launch())  # boots while this kernel works

    def sibling(self) -> Sandbox:
        """Another kernel (not started) in the same folder, run by the same user, with the same
        limits: parallel branches of one run share the checkpoint store and the artifacts."""
        twin = copy.copy(self)
        twin.last_checkpoint, twin._kernel, twin._spares = None, None, []
        return twin

    def close(self) -> None:
        for kernel in [self._kernel, *self._spares]:
            if kernel is not None:
                kernel.shutdown()
        self._kernel, self._spares, self._closed = None, [], True

    def restart(self) -> None:
        """A fresh kernel from the pool: the namespace is lost."""
        if self._closed:
            raise RuntimeError("the sandbox is closed")
        if self._kernel is not None:
            self._kernel.shutdown()
            self._kernel = None
        self.start()

    @property
    def alive(self) -> bool:
        return self._kernel is not None and self._kernel.manager.is_alive()

    @property
    def _km(self) -> _ConfinedKernelManager:
        assert self._kernel is not None, "the sandbox is not started"
        return self._kernel.manager

    @property
    def _kc(self) -> Any:
        assert self._kernel is not None, "the sandbox is not started"
        return self._kernel.client

    def _launch(self) -> _Kernel:
        sockets = Path(tempfile.mkdtemp(prefix="dsassist-kernel-"))
        self.confinement.prepare(self.workdir, sockets)  # the last kernel may have emptied its folder
        # IPC sockets are about a millisecond faster per round-trip than loopback TCP
        km = _ConfinedKernelManager(kernel_name=self.kernel_name, transport="ipc")
        km.ip = str(sockets / "kernel")
        km.connection_file = str(sockets / "kernel.json")
        km.confinement, km.writable = self.confinement, [self.workdir, sockets]
        # a signal would reach bubblewrap, not the kernel: interrupt with a control message
        km.kernel_spec.interrupt_mode = "message"
        with _open_no_follow(self.log) as log:
            km.start_kernel(
                cwd=str(self.workdir),
                env=self.confinement.env(),
                stdout=log,
                stderr=log,
                extra_arguments=self._preload_arguments(),
            )
        client = km.client()
        client.start_channels()
        return _Kernel(km, client, sockets)

    def _preload_arguments(self) -> list[str]:
        """Import heavy modules while a pooled kernel boots, so that a restore need not wait for them.

        Nothing is bound in the user's namespace: the modules only land in `sys.modules`.
        """
        if not self.preload:
            return []
        names = ", ".join(repr(m) for m in self.preload)
        return [f"--IPKernelApp.exec_lines=for _m in ({names},): __import__(_m)"]

    # ---- checkpoints and branches -------------------------------------------------------

    def checkpoint(self, label: str, replay: list[str] | None = None) -> Checkpoint:
        """Save the namespace; it becomes the state a dead kernel is restored to.

        `replay` are the cells that rebuild the namespace: used for what cannot be pickled,
        and for everything when the saved objects are gone.
        """
        start = time.perf_counter()
        folder = json.dumps(str(self.checkpoints))
        payload = self._expression(f"_dsassist_checkpoint({folder})", timeout=CHECKPOINT_TIMEOUT_S)
        checkpoint = Checkpoint(label=label, replay=list(replay or []), **json.loads(payload))
        checkpoint.duration_s = time.perf_counter() - start
        self.last_checkpoint = checkpoint
        return checkpoint

    def restore(self, checkpoint: Checkpoint) -> None:
        """Bring a checkpoint's namespace into the current kernel.

        What cannot be pickled is rebuilt by replaying the cells first; if the saved objects
        are missing or corrupt, the whole namespace is rebuilt by replay in a fresh kernel.
        Raises RuntimeError when neither works.
        """
        if checkpoint.unpicklable:
            self._replay(checkpoint)
        args = f"{json.dumps(str(self.checkpoints))}, {json.dumps(checkpoint.model_dump_json())}"
        try:
            self._expression(f"_dsassist_restore({args})", timeout=CHECKPOINT_TIMEOUT_S)
        except RuntimeError:
            if not checkpoint.replay:
                raise
            self.restart()
            self._replay(checkpoint)
        self.last_checkpoint = checkpoint

    def _replay(self, checkpoint: Checkpoint) -> None:
        for cell in checkpoint.replay:
            result = self.execute(cell)
            if not result.ok:
                raise RuntimeError(f"replaying checkpoint {checkpoint.label} failed: {result.error}")

    def branch(self, checkpoint: Checkpoint) -> None:
        """Continue from an earlier state: a fresh kernel from the pool, restored to `checkpoint`."""
        self.restart()
        self.restore(checkpoint)

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
            killed = True  # unless the interrupt works
            if self.alive:
                self._km.interrupt_kernel()
                grace = time.perf_counter() + self.interrupt_grace_s
                killed = not self._collect(msg_id, collector, grace) or collector.died
            collector.error = ErrorInfo(
                name="Timeout",
                value=f"the cell ran longer than {timeout:.0f}s and was interrupted",
            )
            if killed:  # the interrupt did not work
                collector.error.value += self._recover()
        elif collector.died:
            collector.error = self._death_cause()
            collector.error.value += self._recover()
        elif collector.error is not None:
            collector.error = _name_limit(collector.error)
            if collector.error.name == "ProcessLimit":  # forked children may still run: end them all
                collector.error.value += self._recover()
        return collector.result(time.perf_counter() - start)

    def _recover(self) -> str:
        """Replace a dead or runaway kernel, restore the last checkpoint, and say so."""
        self.restart()
        if self.last_checkpoint is None:
            return "; a fresh kernel replaced it (no checkpoint yet)"
        try:
            self.restore(self.last_checkpoint)
        except RuntimeError as exc:
            return f"; a fresh kernel replaced it, but restoring {self.last_checkpoint.label} failed: {exc}"
        return f"; a fresh kernel replaced it, restored from checkpoint {self.last_checkpoint.label}"

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
        try:
            return KernelState.model_validate(json.loads(self._expression("_dsassist_state()")))
        except RuntimeError:
            return KernelState()

    def _expression(self, expression: str, timeout: float | None = None) -> str:
        """The string value of an expression evaluated silently in the kernel."""
        reply = self._run_silent("", timeout=timeout, user_expressions={"value": expression})
        value = reply["content"]["user_expressions"]["value"]
        if value.get("status") != "ok":
            raise RuntimeError(
                f"{expression} failed in the kernel: {value.get('ename')}: {value.get('evalue')}"
            )
        return ast.literal_eval(value["data"]["text/plain"])  # text/plain holds the str's repr

    # ---- internals ----------------------------------------------------------------------

    def _run_silent(self, code: str, timeout: float | None = None, **kwargs: Any) -> dict[str, Any]:
        msg_id = self._kc.execute(code, silent=True, store_history=False, **kwargs)
        deadline = time.monotonic() + (timeout or self.startup_timeout)
        while True:
            try:
                reply = self._kc.get_shell_msg(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise RuntimeError(
                    f"the kernel did not answer within {timeout or self.startup_timeout:.0f}s"
                ) from None
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
            if os.path.realpath(self.artifacts) != str(self.artifacts):  # swapped for a link
                return [Output(mime="text/plain", text="[image dropped: the artifacts folder was replaced]")]
            path = self.artifacts / f"{hashlib.sha256(raw).hexdigest()[:16]}.png"
            with _open_no_follow(path, append=False) as f:
                f.write(raw)
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


def _open_no_follow(path: Path, append: bool = True) -> Any:
    """Open a file for writing that the kernel could have replaced: never through a symlink,
    never blocking on a FIFO, only a regular file (else the output goes nowhere)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | (os.O_APPEND if append else os.O_TRUNC)
    try:
        fd = os.open(path, flags, 0o644)
    except OSError:
        return open(os.devnull, "wb")
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return open(os.devnull, "wb")
    return os.fdopen(fd, "ab" if append else "wb")


def _truncate(text: str, limit: int) -> str:
    """Keep the head and the tail of an output flood."""
    capped = _Capped(limit)
    capped.add(text)
    return capped.text()
