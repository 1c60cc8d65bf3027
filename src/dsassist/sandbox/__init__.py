"""Stateful, sandboxed execution of code cells in Jupyter kernels, here or on Ray workers."""

from dsassist.sandbox.base import Executor, WorkerLost
from dsassist.sandbox.kernel import Sandbox

__all__ = ["Executor", "Sandbox", "WorkerLost"]
