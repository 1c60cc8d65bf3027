"""Stateful, sandboxed execution of code cells in Jupyter kernels."""

from dsassist.sandbox.kernel import Sandbox

__all__ = ["Sandbox"]
