"""Check the user's table before a run writes anything: `python -m dsassist_kernel.table PATH [TARGET]`.

Prints one JSON object: {"ok": true, "rows", "columns", "sha256", "format", "task"} or
{"ok": false, "error": "<one line>"}. Runs with the kernel interpreter (pandas), outside the
kernel: the host has no table reader of its own.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

READERS = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet"}


class TableError(Exception):
    """One line for the user."""


def load_table(path: str):
    """Read a CSV, TSV or Parquet file by its extension (cells call it through the toolkit)."""
    import pandas as pd

    suffix = str(path).lower().rsplit(".", 1)[-1]
    if suffix in ("parquet", "pq"):
        return pd.read_parquet(path)
    return pd.read_csv(path, sep="\t" if suffix == "tsv" else ",")


def read(path: Path):
    import pandas as pd

    if not path.exists():
        raise TableError(f"data file not found: {path}")
    if not path.is_file():
        raise TableError(f"not a file: {path}")
    fmt = READERS.get(path.suffix.lower())
    if fmt is None:
        shown = path.suffix or "(no extension)"
        raise TableError(f"unsupported format {shown!r} for {path}: use .csv, .tsv or .parquet")
    try:
        frame = load_table(str(path))
    except pd.errors.EmptyDataError:
        raise TableError(f"{path} is empty") from None
    except UnicodeDecodeError:
        raise TableError(f"{path} is not a text table (not UTF-8)") from None
    except Exception as exc:  # parsers raise many types; the user needs the file and the reason
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TableError(f"{path} is not a readable {fmt} table: {reason}") from None
    if not isinstance(frame.index, pd.RangeIndex):  # pandas took extra leading fields as an index
        raise TableError(f"{path} is not a table: its rows have more fields than its header")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise TableError(f"{path} holds no rows")
    if fmt != "parquet" and _looks_like_prose(frame):
        raise TableError(f"{path} is not a table: it reads as prose (one column of sentences)")
    return frame, fmt


def _looks_like_prose(frame) -> bool:
    """A text file read as CSV: one column whose header and values are sentences."""
    if frame.shape[1] > 2:
        return False
    header_words = max(len(str(c).split()) for c in frame.columns)
    return header_words >= 4


def infer_task(target) -> str:
    """Classification for labels and small sets of integers, regression for real values."""
    import pandas as pd

    n_unique = target.nunique()
    if n_unique == 2:
        return "binary"
    numeric = pd.api.types.is_numeric_dtype(target) and not pd.api.types.is_bool_dtype(target)
    if not numeric:
        return "multiclass"
    integral = bool((target == target.round()).all())
    if integral and n_unique <= min(20, max(3, len(target) // 20)):
        return "multiclass"
    return "regression"


def inspect(path: Path, target: str | None) -> dict:
    frame, fmt = read(path)
    out = {
        "ok": True,
        "rows": int(frame.shape[0]),
        "columns": [str(c) for c in frame.columns],
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "format": fmt,
        "task": None,
    }
    if target is None:
        return out
    if target not in frame.columns:
        shown = ", ".join(map(str, frame.columns[:12]))
        raise TableError(f"target column {target!r} not in {path.name} (columns: {shown})")
    values = frame[target].dropna()
    if values.nunique() < 2:
        raise TableError(f"target column {target!r} has a single value: nothing to learn")
    if frame.shape[1] < 2:
        raise TableError(f"{path.name} has no feature columns besides the target {target!r}")
    out["task"] = infer_task(values)
    return out


def main(argv: list[str]) -> int:
    path, target = Path(argv[0]).resolve(), (argv[1] if len(argv) > 1 else None)
    try:
        result = inspect(path, target)
    except TableError as exc:
        result = {"ok": False, "error": str(exc)}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
