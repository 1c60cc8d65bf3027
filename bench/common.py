"""Helpers the benchmarks share: the machine's load, headings, target verdicts."""

from __future__ import annotations

import os


def load_average() -> str:
    """The machine's load, since other work on it skews every wall-clock figure."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min)"


def heading(text: str) -> None:
    print(f"\n== {text} " + "=" * max(0, 88 - len(text)), flush=True)


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"
