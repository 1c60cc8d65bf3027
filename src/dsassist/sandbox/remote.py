"""Kernels in Ray actors: the same confined sandbox, on whichever worker of a Ray cluster has room.

The run folder must be on storage every worker can read and write (the same path on every
node, as a shared volume): checkpoints, artifacts and the kernel log go there, so a branch,
or a step retried after its worker died, can continue on any worker.
"""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path
from typing import Any

from dsassist.errors import DSAssistError
from dsassist.messages import Execution, KernelState
from dsassist.sandbox.base import WorkerLost
from dsassist.sandbox.checkpoint import Checkpoint
from dsassist.sandbox.kernel import Sandbox

CONNECT_TIMEOUT_S = 10.0
START_TIMEOUT_S = 300.0  # a cluster may have to scale up a node before a kernel fits


def connect(address: str | None, parallel: int) -> None:
    """Join the Ray cluster at `address` (`auto`, `ray://host:10001`), or start Ray here.

    Started here, Ray gets at least one CPU per branch, so every kernel actor can be placed.
    """
    try:
        import ray
    except ImportError:
        raise DSAssistError("--executor ray needs Ray: pip install 'dsassist[ray]'") from None
    if address and address != "auto":
        _check_reachable(address)  # Ray itself retries an unreachable address for minutes
    if ray.is_initialized():  # by the caller of the Python API, or an earlier run in this process
        return
    local = {} if address else {"num_cpus": max(os.cpu_count() or 1, parallel)}
    try:
        ray.init(
            address=address, include_dashboard=False, log_to_driver=False, logging_level="ERROR", **local
        )
    except Exception as exc:  # Ray raises ConnectionError, RuntimeError or ValueError here
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DSAssistError(f"cannot reach the Ray cluster at {address}: {first}") from None


def _check_reachable(address: str) -> None:
    """A host:port address (`ray://` for Ray Client, none for the GCS) accepts connections."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise DSAssistError(f"invalid Ray address {address!r}: use auto, host:port or ray://host:10001")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise DSAssistError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}") from None


class KernelActor:
    """Holds one started Sandbox in a Ray worker process; its methods are the sandbox's."""

    def __init__(self, workdir: str, options: dict[str, Any]) -> None:
        self.sandbox = Sandbox(workdir, **options)
        self.sandbox.start()

    def ready(self) -> int:
        return os.getpid()

    def execute(self, code: str, timeout: float | None) -> Execution:
        return self.sandbox.execute(code, timeout=timeout)

    def state(self) -> KernelState:
        return self.sandbox.state()

    def checkpoint(self, label: str, replay: list[str] | None) -> Checkpoint:
        return self.sandbox.checkpoint(label, replay=replay)

    def restore(self, checkpoint: Checkpoint) -> None:
        self.sandbox.restore(checkpoint)

    def branch(self, checkpoint: Checkpoint) -> None:
        self.sandbox.branch(checkpoint)

    def close(self) -> None:
        self.sandbox.close()


class RaySandbox:
    """The sandbox's interface, with the kernel in a Ray actor (reserving its `cores`, or one CPU).

    When the actor's worker dies, a new actor takes its place and the call raises
    `WorkerLost`: the kernel's state went with the worker, and the controller runs the step
    again from its parent's checkpoint.
    """

    def __init__(self, workdir: str | os.PathLike[str], **options: Any) -> None:
        self.workdir = str(Path(workdir).resolve())
        self.options = options
        self.last_checkpoint: Checkpoint | None = None
        self.pid: int | None = None  # the worker process holding the kernel
        self._actor: Any = None

    def __enter__(self) -> RaySandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        import ray

        cpus = self.options.get("cores") or 1
        actor_class = ray.remote(num_cpus=cpus, max_restarts=0, max_task_retries=0)(KernelActor)
        self._actor = actor_class.remote(self.workdir, self.options)
        try:
            self.pid = ray.get(self._actor.ready.remote(), timeout=START_TIMEOUT_S)
        except ray.exceptions.GetTimeoutError:
            raise DSAssistError(
                f"no Ray worker took a kernel within {START_TIMEOUT_S:.0f}s: each branch needs a free CPU"
            ) from None
        except ray.exceptions.RayActorError as exc:
            raise DSAssistError(f"the kernel could not start on a Ray worker: {_first_line(exc)}") from None

    def close(self) -> None:
        import ray

        if self._actor is None:
            return
        with contextlib.suppress(Exception):  # a dead or stuck worker: killing it ends its kernel
            ray.get(self._actor.close.remote(), timeout=30)
        ray.kill(self._actor)
        self._actor = None

    def execute(self, code: str, timeout: float | None = None) -> Execution:
        return self._call("execute", code, timeout)

    def state(self) -> KernelState:
        return self._call("state")

    def checkpoint(self, label: str, replay: list[str] | None = None) -> Checkpoint:
        self.last_checkpoint = self._call("checkpoint", label, replay)
        return self.last_checkpoint

    def restore(self, checkpoint: Checkpoint) -> None:
        self._call("restore", checkpoint)
        self.last_checkpoint = checkpoint

    def branch(self, checkpoint: Checkpoint) -> None:
        self._call("branch", checkpoint)
        self.last_checkpoint = checkpoint

    def _call(self, method: str, *args: Any) -> Any:
        import ray

        try:
            return ray.get(getattr(self._actor, method).remote(*args))
        except ray.exceptions.RayActorError as exc:
            lost = self.pid
            ray.kill(self._actor)
            self.last_checkpoint = None
            self.start()
            raise WorkerLost(
                f"the Ray worker (pid {lost}) holding the kernel died during {method}: "
                f"{_first_line(exc)}; a new worker (pid {self.pid}) took its place"
            ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__
