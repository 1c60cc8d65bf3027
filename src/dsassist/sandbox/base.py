"""What the controller needs of a kernel, wherever it runs: this process's machine or a Ray worker."""

from __future__ import annotations

from typing import Protocol

from dsassist.messages import Execution, KernelState
from dsassist.sandbox.checkpoint import Checkpoint


class WorkerLost(RuntimeError):
    """The worker that held a kernel is gone, and the kernel's state with it.

    A sandbox raises it once it has a fresh kernel in its place: the step that was running
    starts again from its parent's checkpoint.
    """


class Executor(Protocol):
    """One stateful kernel: `Sandbox` locally, `RaySandbox` in a Ray actor."""

    def start(self) -> None: ...

    def close(self) -> None: ...

    def execute(self, code: str, timeout: float | None = None) -> Execution: ...

    def state(self) -> KernelState: ...

    def checkpoint(self, label: str, replay: list[str] | None = None) -> Checkpoint: ...

    def restore(self, checkpoint: Checkpoint) -> None: ...

    def branch(self, checkpoint: Checkpoint) -> None: ...
