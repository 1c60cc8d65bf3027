"""Reading the user's table and checking it before anything is written."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from dsassist.config import TaskType
from dsassist.errors import DSAssistError
from dsassist.templates.tabular.toolkit import load_table

READERS = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet"}


@dataclass(frozen=True)
class Dataset:
    path: Path
    frame: pd.DataFrame
    sha256: str
    format: str

    @property
    def shape(self) -> tuple[int, int]:
        return self.frame.shape


def read_table(path: Path) -> Dataset:
    """Read a CSV, TSV or Parquet file, with a one-line error for each way it can go wrong."""
    path = Path(path)
    if not path.exists():
        raise DSAssistError(f"data file not found: {path}")
    if not path.is_file():
        raise DSAssistError(f"not a file: {path}")
    fmt = READERS.get(path.suffix.lower())
    if fmt is None:
        raise DSAssistError(
            f"unsupported format {path.suffix or '(no extension)'!r} for {path}: use .csv, .tsv or .parquet"
        )
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DSAssistError(f"cannot read {path}: {exc.strerror or exc}") from exc
    frame = _parse(path, fmt)
    if not isinstance(frame.index, pd.RangeIndex):  # pandas took extra leading fields as an index
        raise DSAssistError(f"{path} is not a table: its rows have more fields than its header")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise DSAssistError(f"{path} holds no rows")
    return Dataset(path=path.resolve(), frame=frame, sha256=hashlib.sha256(raw).hexdigest(), format=fmt)


def _parse(path: Path, fmt: str) -> pd.DataFrame:
    """The table, or a one-line error saying why it is not one."""
    try:
        return load_table(str(path))
    except pd.errors.EmptyDataError as exc:
        raise DSAssistError(f"{path} is empty") from exc
    except UnicodeDecodeError as exc:
        raise DSAssistError(f"{path} is not a text table (not UTF-8)") from exc
    except Exception as exc:  # parsers raise many types; the user needs the file and the reason
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DSAssistError(f"{path} is not a readable {fmt} table: {reason}") from exc


def check_target(frame: pd.DataFrame, target: str, path: Path) -> pd.Series:
    """The target column's non-missing values, or a one-line error."""
    if target not in frame.columns:
        shown = ", ".join(map(str, frame.columns[:12]))
        raise DSAssistError(f"target column {target!r} not in {path.name} (columns: {shown})")
    values = frame[target].dropna()
    if values.nunique() < 2:
        raise DSAssistError(f"target column {target!r} has a single value: nothing to learn")
    if frame.shape[1] < 2:
        raise DSAssistError(f"{path.name} has no feature columns besides the target {target!r}")
    return values


def infer_task(target: pd.Series) -> TaskType:
    """Classification for labels and small sets of integers, regression for real values."""
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
