"""What the tabular experiment cells call inside the kernel: profiling, pipelines, scoring.

Cells stay short and readable (`evaluate(build_pipeline(spec, columns), X, y, folds)`),
and the same functions run when the exported notebook is re-executed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
    VotingClassifier,
    VotingRegressor,
)
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import get_scorer
from sklearn.model_selection import (
    GroupKFold,
    KFold,
    StratifiedKFold,
    TimeSeriesSplit,
    cross_validate,
)
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    OneHotEncoder,
    OrdinalEncoder,
    StandardScaler,
    TargetEncoder,
)

from .table import load_table  # noqa: F401  (re-exported: cells import it from here)

RECORD_MIME = "application/vnd.dsassist.{kind}+json"

# metric name -> (sklearn scorer, higher is better)
METRICS: dict[str, tuple[str, bool]] = {
    "roc_auc": ("roc_auc_ovr", True),
    "accuracy": ("accuracy", True),
    "balanced_accuracy": ("balanced_accuracy", True),
    "log_loss": ("neg_log_loss", False),
    "f1": ("f1", True),
    "rmse": ("neg_root_mean_squared_error", False),
    "mae": ("neg_mean_absolute_error", False),
    "r2": ("r2", True),
}
DEFAULT_METRIC = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "rmse"}
SECONDARY = {
    "binary": ["accuracy", "log_loss"],
    "multiclass": ["log_loss", "balanced_accuracy"],
    "regression": ["r2", "mae"],
}
TARGET_LABEL = "target={}"
_ID_NAME = re.compile(r"(^|_)(id|uuid|key|index|idx)$|^(id|uuid)_|identifier", re.IGNORECASE)


def publish(kind: str, record: dict[str, Any]) -> None:
    """Hand a structured record to whoever runs the kernel (the controller, or a notebook)."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        return
    if get_ipython() is None:  # plain Python: nobody is listening
        return
    display({RECORD_MIME.format(kind=kind): record}, raw=True)


# ---- profiling ------------------------------------------------------------------------


def column_kind(s: pd.Series) -> str:
    """numeric, categorical, datetime, text, identifier or constant."""
    non_null = s.dropna()
    n, n_unique = len(non_null), non_null.nunique()
    if n_unique <= 1:
        return "constant"
    if pd.api.types.is_bool_dtype(s):
        return "categorical"
    if pd.api.types.is_datetime64_any_dtype(s):
        return "datetime"
    if pd.api.types.is_numeric_dtype(s):
        integral = pd.api.types.is_integer_dtype(s)
        if integral and n_unique == n and _ID_NAME.search(str(s.name)):
            return "identifier"
        return "numeric"
    text = non_null.astype(str)
    if _looks_like_dates(text):
        return "datetime"
    words = text.str.split().str.len().mean()
    if n_unique == n and words <= 1.5 and n > 20:
        return "identifier"
    if words >= 2.5 or (n_unique > 0.5 * n and words > 1.5):
        return "text"
    return "categorical"


def _looks_like_dates(text: pd.Series) -> bool:
    sample = text.head(200)
    if not sample.str.contains(r"\d{1,4}[-/:.]\d{1,2}", regex=True).mean() > 0.9:
        return False
    parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    return parsed.notna().mean() > 0.9


def _alone_score(x: pd.Series, y: pd.Series, task: str) -> float:
    """How well one column predicts the target on its own: purity or |correlation|, in [0, 1]."""
    frame = pd.DataFrame({"x": x, "y": y}).dropna()
    if len(frame) < 10:
        return 0.0
    if task == "regression":
        if pd.api.types.is_numeric_dtype(frame["x"]) and not pd.api.types.is_bool_dtype(frame["x"]):
            return float(abs(frame["x"].corr(frame["y"], method="spearman")))
        if frame["x"].nunique() > len(frame) / 2:
            return 0.0
        fitted = frame.groupby("x")["y"].transform("mean")
        resid = ((frame["y"] - fitted) ** 2).sum()
        total = ((frame["y"] - frame["y"].mean()) ** 2).sum()
        return float(1 - resid / total) if total > 0 else 0.0
    if pd.api.types.is_numeric_dtype(frame["x"]) and frame["x"].nunique() > 20:
        codes = pd.qcut(frame["x"], 20, duplicates="drop")
    elif frame["x"].nunique() > len(frame) / 2:
        return 0.0
    else:
        codes = frame["x"]
    majority = frame.groupby(codes, observed=True)["y"].agg(lambda v: v.value_counts().iloc[0]).sum()
    return float(majority / len(frame))


def _r2(A: np.ndarray, b: np.ndarray) -> float:
    """In-sample R² of least squares of b on A (with an intercept)."""
    A = np.column_stack([np.ones(len(b)), A])
    coef, *_ = np.linalg.lstsq(A, b, rcond=None)
    total = float(((b - b.mean()) ** 2).sum())
    return 1 - float(((b - A @ coef) ** 2).sum()) / total if total > 0 else 1.0


def target_identities(X: pd.DataFrame, y: pd.Series, limit: int = 50) -> dict[str, str]:
    """Numeric columns computed from the target (a total that includes it, say).

    A column that the target and the other columns reproduce almost exactly (R² >= 0.99),
    where the target removes most of what the others leave unexplained, lets a model read
    the target back. The worst offender is flagged and the check repeats without it.
    """
    numeric = [
        c for c in X.columns if pd.api.types.is_numeric_dtype(X[c]) and not pd.api.types.is_bool_dtype(X[c])
    ]
    frame = pd.concat([X[numeric[:limit]], y.rename("__target__")], axis=1).dropna()
    if len(frame) < 30 or len(numeric) < 1:
        return {}
    flagged: dict[str, str] = {}
    columns = list(frame.columns[:-1])
    target = frame["__target__"].to_numpy(float)
    while columns:
        worst, worst_ratio, worst_r2 = None, 3.0, 0.0
        for c in columns:
            others = frame[[o for o in columns if o != c]].to_numpy(float)
            b = frame[c].to_numpy(float)
            with_y = _r2(np.column_stack([others, target]), b)
            without = _r2(others, b) if others.shape[1] else 0.0
            ratio = (1 - without) / max(1 - with_y, 1e-12)
            if with_y >= 0.99 and ratio > worst_ratio:
                worst, worst_ratio, worst_r2 = c, ratio, with_y
        if worst is None:
            return flagged
        flagged[worst] = f"leak: the target and other columns reproduce it (R² {worst_r2:.4f})"
        columns.remove(worst)
    return flagged


def _duplicate_of(df: pd.DataFrame, col: str, earlier: list[str]) -> str | None:
    """An earlier column that carries the same information (a one-to-one relabelling)."""
    a = _labels(df[col])
    if a is None:
        return None
    for other in earlier:
        b = _labels(df[other])
        if b is None or b.nunique() != a.nunique():
            continue
        if (pd.DataFrame({"a": a, "b": b}).drop_duplicates().shape[0]) == a.nunique():
            return other
    return None


def _labels(s: pd.Series, most: int = 50) -> pd.Series | None:
    """The values as strings, missing as one more, for a column of at most `most` values.

    Only object columns can merge values when written as strings (1 and "1"); for any other
    column the count of distinct values decides before the slow conversion is paid.
    """
    if s.dtype != object and s.nunique(dropna=False) > most:
        return None
    labels = s.astype("string").fillna("<NA>")
    return labels if labels.nunique() <= most else None


def profile_data(X: pd.DataFrame, y: pd.Series, task: str, keep: Iterable[str] = ()) -> dict[str, Any]:
    """Types, missing values, cardinality, target balance and suspicious columns.

    Suspects, each with its evidence in the reason: identifiers and constants, a column that
    alone predicts the target (in-sample purity or correlation), a one-to-one relabelling of
    an earlier column, a name that reads as known only after the outcome, a column that on
    held-out folds predicts the target far better than every other (`held_out_leak`), and for
    regression a total computed from the target. A column in `keep` (the user's --keep) is
    profiled and compared with the others but never flagged.
    """
    keep = set(keep)
    columns: dict[str, dict[str, Any]] = {}
    suspicious: dict[str, str] = {}
    for i, col in enumerate(X.columns):
        columns[col] = _column_info(X[col])
        why = _column_suspect(X, i, y, task, columns[col], suspicious)
        if why is not None and col not in keep:
            suspicious[col] = why
    candidates = [c for c in X.columns if c not in suspicious and columns[c]["kind"] not in _UNUSABLE]
    dates = [c for c in candidates if columns[c]["kind"] == "datetime"]
    held_out = held_out_scores(X[candidates], y, task, dates)
    for col, (score, _) in held_out.items():
        columns[col]["held_out"] = round(score, 4)
    metric = "R²" if task == "regression" else "accuracy"
    for col in candidates:
        what = after_outcome(col)
        if what is not None and col not in keep:
            evidence = f"; held-out {metric} {held_out[col][0]:.3f}" if col in held_out else ""
            suspicious[col] = f"possible leak: known only after the outcome? (its name reads as {what}{evidence})"
    honest = {c: s for c, s in held_out.items() if c not in suspicious}
    suspicious.update(held_out_leak(honest, metric, keep))
    if task == "regression":
        usable = [c for c in X.columns if c not in suspicious]
        found = target_identities(X[usable], y)
        suspicious.update({c: why for c, why in found.items() if c not in keep})
    return {
        "rows": len(X),
        "columns": columns,
        "suspicious": suspicious,
        "target": _target_summary(y, task),
        "time_column": _time_order_column(X, columns),
        "group_column": _group_column(X, columns),
    }


_UNUSABLE = ("identifier", "constant")


def _column_info(s: pd.Series) -> dict[str, Any]:
    kind = column_kind(s)
    info: dict[str, Any] = {
        "kind": kind,
        "dtype": str(s.dtype),
        "missing": round(float(s.isna().mean()), 4),
        "unique": int(s.nunique()),
    }
    if kind == "numeric":
        info["skew"] = round(float(s.skew()), 2) if s.nunique() > 2 else 0.0
    return info


def _column_suspect(
    X: pd.DataFrame, i: int, y: pd.Series, task: str, info: dict[str, Any], suspicious: dict[str, str]
) -> str | None:
    """Why column `i` on its own is suspect (unusable, a relabelled target, a duplicate), or None."""
    s = X.iloc[:, i]
    if info["kind"] in _UNUSABLE:
        return f"{info['kind']}: {info['unique']} distinct values in {len(s)} rows"
    alone = _alone_score(s, y, task)
    info["alone"] = round(alone, 4)
    if alone >= 0.99 and (task == "regression" or _majority_share(y) < 0.97):
        what = "|correlation|" if task == "regression" else "purity"
        return f"leak: alone it predicts the target ({what} {alone:.3f})"
    twin = _duplicate_of(X, str(X.columns[i]), list(X.columns[:i]))
    if twin is not None and twin not in suspicious:
        return f"duplicate: a relabelling of {twin!r}"
    return None


# ---- leaks: held-out single-column models ---------------------------------------------

HELD_OUT_ROWS = 5000  # sub-sample: the check stays well under a second on 50 columns
HELD_OUT_FOLDS = 3
HELD_OUT_MIN_ROWS = 50  # fewer rows make three folds too noisy to accuse a column
HELD_OUT_BINS = 20  # numbers and dates with more distinct values are cut into quantile bins
SMOOTHING = 3  # a value seen in only a few training rows leans on the training folds' prior
# "Far better": the best column closes at least FAR_AHEAD of the gap between the baseline
# (majority share, or R² 0) and a perfect score, while the next best closes less than
# RUNNER_UP of it. Ordinary strong predictors come in company (sex, who and adult_male on
# titanic agree with each other), so one column alone at the top is what a copy of the
# target looks like. Two copies of the target shield each other from this rule.
FAR_AHEAD = 0.9
RUNNER_UP = 0.5


def held_out_scores(
    X: pd.DataFrame, y: pd.Series, task: str, dates: Iterable[str] = (), seed: int = 0
) -> dict[str, tuple[float, float]]:
    """Column -> (held-out score of a one-column model, the baseline's score) on 3 folds.

    The model predicts from the column's value alone (numbers and dates in quantile bins,
    missing as one more value): the training folds' majority class per value (accuracy,
    baseline the majority class) or mean per value (R², baseline 0).
    """
    frame = X.assign(__target__=y.to_numpy()).dropna(subset=["__target__"])
    if len(frame) > HELD_OUT_ROWS:
        frame = frame.sample(HELD_OUT_ROWS, random_state=seed)
    if len(frame) < HELD_OUT_MIN_ROWS or X.shape[1] == 0:
        return {}
    target, dates = frame.pop("__target__"), set(dates)
    codes = {str(c): _value_codes(frame[c], c in dates) for c in frame.columns}
    if task == "regression":
        values = target.to_numpy(float)
        folds = list(KFold(HELD_OUT_FOLDS, shuffle=True, random_state=seed).split(values))
        return {c: _held_out_r2(v, values, folds) for c, v in codes.items()}
    labels, classes = pd.factorize(target)
    stratify = np.bincount(labels).min() >= HELD_OUT_FOLDS
    splitter = (StratifiedKFold if stratify else KFold)(HELD_OUT_FOLDS, shuffle=True, random_state=seed)
    folds = list(splitter.split(labels, labels))
    k = len(classes)
    return {c: _held_out_accuracy(v, labels, k, folds) for c, v in codes.items()}


def _value_codes(s: pd.Series, date: bool) -> np.ndarray:
    """One integer per row for the column's value; many numbers or dates become quantile bins."""
    values = s
    if date:
        t = pd.to_datetime(s, errors="coerce", format="mixed", utc=True)
        values = (t - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        if values.nunique() > HELD_OUT_BINS:
            values = pd.qcut(values, HELD_OUT_BINS, duplicates="drop")
    codes, _ = pd.factorize(values)
    return np.where(codes < 0, codes.max() + 1, codes)  # missing: one more value


def _held_out_accuracy(
    codes: np.ndarray, labels: np.ndarray, k: int, folds: list[tuple[np.ndarray, np.ndarray]]
) -> tuple[float, float]:
    hits = baseline_hits = 0
    for train, valid in folds:
        prior = np.bincount(labels[train], minlength=k) / len(train)
        counts = np.zeros((codes.max() + 1, k))
        np.add.at(counts, (codes[train], labels[train]), 1)
        guess = (counts + SMOOTHING * prior).argmax(axis=1)[codes[valid]]
        hits += int((guess == labels[valid]).sum())
        baseline_hits += int((labels[valid] == prior.argmax()).sum())
    return hits / len(labels), baseline_hits / len(labels)


def _held_out_r2(
    codes: np.ndarray, values: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]]
) -> tuple[float, float]:
    error = total = 0.0
    for train, valid in folds:
        mean = values[train].mean()
        sums = np.bincount(codes[train], weights=values[train], minlength=codes.max() + 1)
        counts = np.bincount(codes[train], minlength=codes.max() + 1)
        guess = ((sums + SMOOTHING * mean) / (counts + SMOOTHING))[codes[valid]]
        error += float(((values[valid] - guess) ** 2).sum())
        total += float(((values[valid] - mean) ** 2).sum())
    return (1 - error / total if total > 0 else 0.0), 0.0


def held_out_leak(
    scores: dict[str, tuple[float, float]], metric: str, keep: Iterable[str] = ()
) -> dict[str, str]:
    """The one column far ahead of every other on held-out folds (see FAR_AHEAD), if any."""
    closed = {c: (s - b) / (1 - b) if b < 1 else 0.0 for c, (s, b) in scores.items()}
    if len(closed) < 2:  # "far better than any other" needs another column
        return {}
    best, runner_up = sorted(closed, key=lambda c: -closed[c])[:2]
    if best in set(keep) or closed[best] < FAR_AHEAD or closed[runner_up] >= RUNNER_UP:
        return {}
    (score, baseline), next_score = scores[best], scores[runner_up][0]
    evidence = f"held-out {metric} {score:.3f} vs {next_score:.3f} for the next best, {runner_up!r}"
    if metric == "accuracy":
        evidence += f"; majority {baseline:.3f}"
    return {best: f"leak: alone it predicts the target far better than any other column ({evidence})"}


# ---- leaks: names that are only known after the outcome -------------------------------

# Whole words of a name (snake_case, camelCase, spaces), so that marital_status, test_result,
# days_to_expiry, screen_resolution or poutcome are not read as outcomes. Kept short on
# purpose: a flagged column is left out of every model. Words about earlier events
# (previous_outcome, last_refund_date, num_refunds) describe history, not this outcome.
# Known exception: in readmission data the discharge comes before the outcome (--keep it).
_SETTLED = (
    r"(churn(ed)?|cancel(l)?(ed|ation)|terminat(ed|ion)|resolved|resolution|closed|death|died"
    r"|default(ed)?|readmi(tted|ssion)|failure|refund(ed)?|discharged?)"
)
_WHEN = r"(date|day|dt|at|on|timestamp)"
AFTER_OUTCOME: list[tuple[str, str]] = [
    (r"outcomes?", "an outcome"),
    (r"refunds?|refunded|chargebacks?", "a refund or chargeback"),
    (rf"{_SETTLED}_{_WHEN}|{_WHEN}_of_{_SETTLED}", "the date the outcome was settled"),
    (rf"{_SETTLED}_(reason|cause)|(reason|cause)_(for|of)_{_SETTLED}", "the reason for the outcome"),
    (r"discharge_(location|disposition|destination|status)", "where a discharge led"),
    (
        rf"(days|weeks|months|years|hours|minutes|time)_(to|until|till)_({_SETTLED}|event|resolve|close)",
        "the time until the outcome",
    ),
    (r"(status|result|outcome|state|grade|score|diagnosis)_after", "the state after the outcome"),
    (r"final_(status|result|outcome|grade|score|diagnosis|state)", "the final state"),
]
_HISTORY = re.compile(
    r"(^|_)(prev|previous|last|prior|past|earlier|history|historical|num|n|count|cnt|number|total)(_|$)"
)


def after_outcome(name: str) -> str | None:
    """What a column's name says it records, when that is only known after the outcome."""
    words = "_".join(re.findall(r"[a-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", str(name)).lower()))
    if _HISTORY.search(words):
        return None
    for pattern, what in AFTER_OUTCOME:
        if re.search(rf"(^|_)({pattern})(_|$)", words):
            return what
    return None


def _majority_share(y: pd.Series) -> float:
    return float(y.value_counts(normalize=True).iloc[0])


def _target_summary(y: pd.Series, task: str) -> dict[str, Any]:
    if task == "regression":
        return {
            "mean": float(y.mean()),
            "std": float(y.std()),
            "min": float(y.min()),
            "max": float(y.max()),
            "skew": round(float(y.skew()), 2),
        }
    counts = y.value_counts()
    return {"classes": {str(k): int(v) for k, v in counts.items()}, "majority": _majority_share(y)}


def _time_order_column(X: pd.DataFrame, columns: dict[str, dict[str, Any]]) -> str | None:
    """A datetime column by which the rows are already ordered: the data is a time series."""
    for col, info in columns.items():
        if info["kind"] == "datetime":
            t = pd.to_datetime(X[col], errors="coerce", format="mixed")
            if t.notna().mean() > 0.95 and t.dropna().is_monotonic_increasing:
                return col
    return None


def _group_column(X: pd.DataFrame, columns: dict[str, dict[str, Any]]) -> str | None:
    """An id-like column whose values repeat: rows of one entity must stay in one fold."""
    for col, info in columns.items():
        repeats = 1.5 <= len(X) / max(info["unique"], 1) <= 50
        if _ID_NAME.search(str(col)) and info["missing"] == 0 and repeats:
            return col
    return None


def feature_columns(profile: dict[str, Any], exclude: dict[str, str]) -> dict[str, list[str]]:
    """Usable columns grouped by kind, without the excluded ones."""
    kinds: dict[str, list[str]] = {"numeric": [], "categorical": [], "datetime": [], "text": []}
    for col, info in profile["columns"].items():
        if col not in exclude and info["kind"] in kinds:
            kinds[info["kind"]].append(col)
    return kinds


# ---- validation -----------------------------------------------------------------------


def make_folds(
    X: pd.DataFrame,
    y: pd.Series,
    task: str,
    scheme: str,
    n_splits: int = 5,
    seed: int = 0,
    column: str | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Fixed train/validation index pairs, so every comparison uses the same folds."""
    if scheme == "time":
        order = np.argsort(pd.to_datetime(X[column], errors="coerce", format="mixed").values, kind="stable")
        return [(order[tr], order[va]) for tr, va in TimeSeriesSplit(n_splits).split(order)]
    if scheme == "group":
        splitter = GroupKFold(n_splits)
        return list(splitter.split(X, y, groups=X[column]))
    if scheme == "stratified":
        splitter = StratifiedKFold(n_splits, shuffle=True, random_state=seed)
        return list(splitter.split(X, y))
    return list(KFold(n_splits, shuffle=True, random_state=seed).split(X))


# ---- pipelines ------------------------------------------------------------------------

PARALLEL_FOLDS_MIN_ROWS = 2000  # below it, starting worker processes costs more than it saves
SCALED = ("linear", "knn")  # models that need scaled numbers and one-hot categories
BASE_SPEC: dict[str, Any] = {
    "model": "dummy",
    "params": {},
    "impute": "median",
    "missing_indicators": False,
    "categorical": "auto",  # one-hot for linear models and k-NN, ordinal codes for trees
    "log_features": [],
    "date_parts": False,
    "text": False,
    "log_target": False,
}


def date_parts(frame: pd.DataFrame) -> pd.DataFrame:
    """Year, month, day of week and hour of each datetime column."""
    parts = {}
    for col in frame.columns:
        t = pd.to_datetime(frame[col], errors="coerce", format="mixed")
        parts[f"{col}_year"] = t.dt.year
        parts[f"{col}_month"] = t.dt.month
        parts[f"{col}_dayofweek"] = t.dt.day_of_week
        parts[f"{col}_hour"] = t.dt.hour
    return pd.DataFrame(parts, index=frame.index).astype(float)


def as_text(frame: pd.DataFrame) -> pd.Series:
    """All text columns joined into one string per row, missing as empty."""
    return frame.astype("string").fillna("").agg(" ".join, axis=1)


def as_object(frame: pd.DataFrame) -> pd.DataFrame:
    """Categories as plain Python objects, missing as one more category."""
    return frame.astype("string").fillna("__missing__").astype(object)


def signed_log(frame: pd.DataFrame) -> pd.DataFrame:
    return np.sign(frame) * np.log1p(np.abs(frame))


# Parameters that are real numbers. They arrive through JSON, where 1.0 is written 1, and
# for some of them sklearn reads an int otherwise (max_features=1 is one feature, not all).
# A number for max_features or max_samples is therefore always a share, never a count.
FLOAT_PARAMS = frozenset(
    {
        "C",
        "alpha",
        "l1_ratio",
        "learning_rate",
        "subsample",
        "colsample_bytree",
        "reg_lambda",
        "reg_alpha",
        "min_split_gain",
        "min_child_weight",
        "max_features",
        "max_samples",
    }
)


def float_params(params: dict[str, Any]) -> dict[str, Any]:
    """The parameters with the real-valued ones as floats (bools and strings left alone)."""
    return {
        k: float(v) if k in FLOAT_PARAMS and isinstance(v, int) and not isinstance(v, bool) else v
        for k, v in params.items()
    }


def make_model(name: str, task: str, params: dict[str, Any], seed: int = 0) -> Any:
    classify = task != "regression"
    params = float_params(params)
    if name == "dummy":
        return DummyClassifier(strategy="prior") if classify else DummyRegressor()
    if name == "linear":
        if classify:
            return LogisticRegression(max_iter=2000, **{"C": 1.0, **params})
        return Ridge(**{"alpha": 1.0, **params})
    if name == "knn":
        cls = KNeighborsClassifier if classify else KNeighborsRegressor
        return cls(**{"n_neighbors": 15, "weights": "distance", **params})
    if name in ("random_forest", "extra_trees"):
        if name == "random_forest":
            cls = RandomForestClassifier if classify else RandomForestRegressor
        else:
            cls = ExtraTreesClassifier if classify else ExtraTreesRegressor
        # half the features per split for regression too: as accurate here, and twice as fast
        defaults = {
            "n_estimators": 100,  # tuning and sampling try more
            "max_features": "sqrt" if classify else 0.5,
            "n_jobs": min(2, cores()),
            "random_state": seed,
        }
        return cls(**{**defaults, **params})
    if name == "lightgbm":
        from lightgbm import LGBMClassifier, LGBMRegressor

        cls = LGBMClassifier if classify else LGBMRegressor
        defaults = {
            "n_estimators": 200,
            "learning_rate": 0.05,
            "num_leaves": 31,
            "min_child_samples": 20,
            "subsample": 1.0,
            "colsample_bytree": 1.0,
            "random_state": seed,
            # one thread: LightGBM's OpenMP threads spin-wait and slow down 20x or more when
            # another process shares the two cores (measured on taxis: 1.2 s vs 28 s per CV)
            "n_jobs": 1,
            "deterministic": True,
            "force_row_wise": True,
            "verbose": -1,
        }
        return cls(**{**defaults, **params})
    raise ValueError(f"unknown model {name!r}")


def build_pipeline(spec: dict[str, Any], columns: dict[str, list[str]], task: str, seed: int = 0) -> Any:
    """An unfitted sklearn estimator from raw feature columns to predictions.

    An `ensemble` spec averages its member pipelines (probabilities for classifiers).
    """
    spec = {**BASE_SPEC, **spec}
    if spec["model"] == "ensemble":
        members = [(f"m{i}", build_pipeline(m, columns, task, seed)) for i, m in enumerate(spec["members"])]
        if task == "regression":
            return VotingRegressor(members)
        return VotingClassifier(members, voting="soft")
    scaled = spec["model"] in SCALED
    logged = [c for c in spec["log_features"] if c in columns["numeric"]]
    plain = [c for c in columns["numeric"] if c not in logged]
    impute = SimpleImputer(strategy=spec["impute"], add_indicator=spec["missing_indicators"])
    parts: list[tuple[str, Any, Any]] = []
    if plain:
        steps = [impute] + ([StandardScaler()] if scaled else [])
        parts.append(("numeric", make_pipeline(*steps), plain))
    if logged:
        steps = [FunctionTransformer(signed_log), SimpleImputer(strategy=spec["impute"])]
        parts.append(("log", make_pipeline(*steps, *([StandardScaler()] if scaled else [])), logged))
    if columns["categorical"]:
        parts.append(
            ("categorical", _encoder(spec["categorical"], task, scaled, seed), columns["categorical"])
        )
    if spec["date_parts"] and columns["datetime"]:
        dates = make_pipeline(FunctionTransformer(date_parts), SimpleImputer(strategy="median"))
        parts.append(("dates", dates, columns["datetime"]))
    if spec["text"] and columns["text"]:
        text = make_pipeline(FunctionTransformer(as_text), TfidfVectorizer(min_df=2, max_features=300))
        parts.append(("text", text, columns["text"]))
    prep = ColumnTransformer(parts, remainder="drop") if parts else "passthrough"
    model = make_model(spec["model"], task, spec["params"], seed)
    if spec["log_target"] and task == "regression":
        model = TransformedTargetRegressor(regressor=model, func=np.log1p, inverse_func=np.expm1)
    return Pipeline([("prep", prep), ("model", model)])


def _encoder(kind: str, task: str, scaled: bool, seed: int) -> Any:
    to_object = FunctionTransformer(as_object)
    if kind == "auto":
        kind = "onehot" if scaled else "ordinal"
    if kind == "ordinal":
        codes = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
        return make_pipeline(to_object, codes, *([StandardScaler()] if scaled else []))
    if kind == "target":
        target_type = (
            "continuous" if task == "regression" else ("binary" if task == "binary" else "multiclass")
        )
        splits = (KFold if task == "regression" else StratifiedKFold)(5, shuffle=True, random_state=seed)
        return make_pipeline(to_object, TargetEncoder(target_type=target_type, cv=splits))
    onehot = OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=5, sparse_output=False)
    return make_pipeline(to_object, onehot)


# ---- scoring --------------------------------------------------------------------------


def evaluate(
    pipeline: Pipeline,
    X: pd.DataFrame,
    y: pd.Series,
    folds: list[tuple[np.ndarray, np.ndarray]],
    metric: str,
    task: str,
) -> dict[str, Any]:
    """Cross-validate on the fixed folds, print a summary and publish the metrics record."""
    names = [metric, *[m for m in SECONDARY[task] if m != metric]]
    scoring = {m: _scorer(m, task) for m in names}
    jobs = fold_jobs(pipeline, X)
    cv = cross_validate(pipeline, X, y, cv=folds, scoring=scoring, error_score="raise", n_jobs=jobs)
    scores = {m: _oriented(cv[f"test_{m}"], m) for m in names}
    main = scores[metric]
    record = {
        "metric": metric,
        "higher_is_better": METRICS[metric][1],
        "folds": [round(float(s), 6) for s in main],
        "mean": round(float(np.mean(main)), 6),
        "std": round(float(np.std(main)), 6),
        "secondary": {m: round(float(np.mean(scores[m])), 6) for m in names[1:]},
        "fit_time_s": round(float(np.sum(cv["fit_time"])), 3),
        "fold_jobs": jobs or 1,  # folds run at a time
    }
    publish("metrics", record)
    print(f"{metric}: {record['mean']:.4f} ± {record['std']:.4f} over {len(folds)} folds")
    return record


def recheck(
    candidate_spec: dict[str, Any],
    parent_spec: dict[str, Any],
    columns: dict[str, list[str]],
    X: pd.DataFrame,
    y: pd.Series,
    validation: dict[str, Any],
    metric: str,
    task: str,
    seed: int,
) -> dict[str, Any]:
    """Score a near-tie again, candidate and parent on the same freshly shuffled folds.

    Time-ordered and grouped folds have no other shuffle, and refitting on the same folds
    would only repeat the first verdict: those publish no new folds.
    """
    record: dict[str, Any] = {"candidate": [], "parent": []}
    if validation["scheme"] in ("time", "group"):
        record["why"] = f"{validation['scheme']} folds cannot be reshuffled"
    else:
        folds = make_folds(X, y, task, validation["scheme"], validation["n_splits"], seed + 1)
        scorer = _scorer(metric, task)
        for name, spec in (("candidate", candidate_spec), ("parent", parent_spec)):
            pipeline = build_pipeline(spec, columns, task, seed)
            jobs = fold_jobs(pipeline, X)
            cv = cross_validate(pipeline, X, y, cv=folds, scoring=scorer, error_score="raise", n_jobs=jobs)
            record[name] = [round(float(s), 6) for s in _oriented(cv["test_score"], metric)]
    publish("recheck", record)
    return record


CHEAP_MODELS = (
    DummyClassifier,
    DummyRegressor,
    LogisticRegression,
    Ridge,
    KNeighborsClassifier,
    KNeighborsRegressor,
)


def fold_jobs(pipeline: Pipeline, X: pd.DataFrame) -> int | None:
    """Two folds at a time when the model runs on one core and the table is big enough to pay
    for the worker processes; a model that already uses every core keeps the folds in turn."""
    if cores() < 2 or len(X) < PARALLEL_FOLDS_MIN_ROWS:
        return None
    model = pipeline[-1] if isinstance(pipeline, Pipeline) else pipeline
    model = getattr(model, "regressor", model)  # a log-target wrapper
    if isinstance(model, CHEAP_MODELS):
        return None  # they fit in less time than the workers take to start (seconds, once a kernel)
    threaded = any(k.endswith("n_jobs") and v not in (None, 1) for k, v in pipeline.get_params().items())
    return None if threaded else 2


def cores() -> int:
    """The cores this kernel may use: its share when branches run in parallel, else the machine's."""
    return int(os.environ.get("DSASSIST_CORES") or os.cpu_count() or 1)


def _scorer(metric: str, task: str) -> Any:
    name = METRICS[metric][0]
    if metric == "roc_auc" and task == "binary":
        name = "roc_auc"
    return get_scorer(name)


def _oriented(values: np.ndarray, metric: str) -> np.ndarray:
    """sklearn negates losses; report them as the positive numbers people know."""
    return -values if METRICS[metric][0].startswith("neg_") else values


# ---- the final model and what drives it -----------------------------------------------


EXPLAIN_ROWS = 1000  # held-out rows per fold that permutation importance shuffles


def drivers(
    pipeline: Pipeline,
    columns: dict[str, list[str]],
    X: pd.DataFrame,
    y: pd.Series,
    folds: list[tuple[np.ndarray, np.ndarray]],
    metric: str,
    task: str,
    seed: int = 0,
    top: int = 10,
) -> pd.DataFrame:
    """Permutation importance of each raw column on held-out folds, with the direction of effect."""
    from sklearn.base import clone

    scorer = _scorer(metric, task)
    X = X[[c for cols in columns.values() for c in cols]]  # only the columns the model may use
    drops = []
    rng = np.random.default_rng(seed)
    for train, valid in folds[:2]:
        fitted = clone(pipeline).fit(X.iloc[train], y.iloc[train])
        if len(valid) > EXPLAIN_ROWS:  # the cost grows with rows x columns: a sample ranks them as well
            valid = np.sort(rng.choice(valid, EXPLAIN_ROWS, replace=False))
        result = permutation_importance(
            fitted, X.iloc[valid], y.iloc[valid], scoring=scorer, n_repeats=3, random_state=seed
        )
        drops.append(result.importances_mean)
    importance = pd.Series(np.mean(drops, axis=0), index=X.columns)
    table = importance.sort_values(ascending=False).head(top).to_frame("importance")
    table["effect"] = [_effect(X[c], y, task) for c in table.index]
    publish("drivers", {"columns": table.reset_index(names="column").to_dict(orient="records")})
    return table


def _effect(x: pd.Series, y: pd.Series, task: str) -> str:
    """A one-phrase description of how the target moves with one column."""
    numeric = pd.api.types.is_numeric_dtype(x) and not pd.api.types.is_bool_dtype(x)
    if task == "multiclass":
        if numeric:
            means = x.groupby(y).mean().sort_values()
            high, low = f"{means.index[-1]} ({means.iloc[-1]:.4g})", f"{means.index[0]} ({means.iloc[0]:.4g})"
            return f"highest for {high}, lowest for {low}"
        modes = y.groupby(x.astype("string").fillna("missing")).agg(lambda v: v.mode().iloc[0])
        return "most common class by value: " + ", ".join(f"{k}: {v}" for k, v in modes.head(4).items())
    if task == "binary":
        positive = sorted(y.unique())[-1]
        target, label = (y == positive).astype(float), f"share of {TARGET_LABEL.format(positive)}"
    else:
        target, label = y.astype(float), "mean target"
    if numeric and x.nunique() > 10:
        return f"spearman {x.corr(target, method='spearman'):+.2f} with the target"
    means = target.groupby(x.astype("string").fillna("missing")).mean().sort_values(ascending=False)
    return f"{label} by value: " + ", ".join(f"{k}: {v:.2f}" for k, v in means.head(4).items())


def save_model(pipeline: Pipeline, path: str, meta: dict[str, Any]) -> None:
    """Pickle by value (cloudpickle), so the model loads where this kernel's code is absent."""
    import json

    import cloudpickle

    with open(path, "wb") as f:
        cloudpickle.dump(pipeline, f)
    with open(re.sub(r"\.pkl$", ".json", path), "w") as f:
        json.dump(meta, f, indent=2, default=str)
