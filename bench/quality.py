"""How good DSAssist's final model is on held-out rows, next to FLAML and a default LightGBM.

For each tabular dataset of the shared suite (`suite.json`, paths under `tabular/`), one split:
20% of the rows held out as a test set (`train_test_split`, seed 0, stratified for
classification), the other 80% given to three systems, each scored on the same test rows:

1. DSAssist: the 80% written to a CSV, `dsassist.run(train.csv, target, budget=B, seed=0,
   max_steps=500)`, then `dsassist.predict(run, test.csv)` (the test rows without the target);
2. FLAML: `AutoML().fit(..., time_budget=B, metric=roc_auc | log_loss | rmse, seed=0, n_jobs=2)`;
3. LightGBM with its default parameters (`LGBMClassifier()` / `LGBMRegressor()`).

String columns are pandas categories for FLAML and LightGBM (categories from the training rows).
Scores: ROC AUC for binary targets, accuracy (and log-loss, shown but not counted) for
multiclass, RMSE for regression. Wall time per system includes fitting and predicting.

Leaks: DSAssist's profile flags columns that give the target away (titanic's `alive` is a
relabelling of the target, taxis' `total` includes the tip) and DSAssist leaves them out.
The same check (`profile_data(...)["suspicious"]`, reasons starting with "leak") is run on the
training rows; where it flags columns, FLAML and LightGBM run twice: as given, and without the
leaky columns. The fair variant (without) is the one in the main table and in the counts.

The fold spread is DSAssist's `result.best_std`: the standard deviation over the CV folds of
its best pipeline, in its CV metric (roc_auc, accuracy for multiclass, rmse), the same units as
the test score counted here.

Target: at B = 60 s on 2 cores, DSAssist's test score at least FLAML's on most datasets, and
never worse than the default LightGBM by more than the fold spread. Nothing is asserted: the
script prints the figures and exits 0.

Run: /work/venv/bin/python bench/quality.py [--budget 60] [--datasets titanic,tips] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, log_loss, mean_squared_error, roc_auc_score
from sklearn.model_selection import train_test_split

import dsassist
from common import heading, load_average, verdict  # bench/common.py: run as python bench/<name>.py
from dsassist.templates.tabular.toolkit import load_table, profile_data

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data" / "dev"
TEST_SIZE = 0.2
SEED = 0
MAX_STEPS = 500
FLAML_JOBS = 2
# the metric each system is ranked by (the suite's), and what else is shown per task
PRIMARY = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "rmse"}
SHOWN = {"binary": ["roc_auc"], "multiclass": ["accuracy", "log_loss"], "regression": ["rmse"]}
HIGHER_IS_BETTER = {"roc_auc": True, "accuracy": True, "log_loss": False, "rmse": False}
FLAML_METRIC = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}
AS_GIVEN, FAIR = "as given", "without leaks"
SYSTEMS = ("DSAssist", "FLAML", "LightGBM")


@dataclass(frozen=True)
class DatasetSpec:
    """One entry of the suite."""

    name: str
    path: Path
    target: str
    task: str
    metric: str


@dataclass
class Split:
    """The held-out split every system sees, and the leaky columns the profile flags."""

    X_train: pd.DataFrame
    y_train: pd.Series
    X_test: pd.DataFrame
    y_test: pd.Series
    labels: list[Any]  # the class labels in sorted order; empty for regression
    leaks: dict[str, str]  # column -> reason


@dataclass
class Predictions:
    label: np.ndarray
    proba: np.ndarray | None = None  # one column per label of `Split.labels`, in that order


@dataclass
class Outcome:
    """One system on one dataset: test scores and wall time, or the error it raised."""

    scores: dict[str, float] = field(default_factory=dict)
    wall_s: float = float("nan")
    error: str | None = None
    trace: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class DatasetResult:
    spec: DatasetSpec
    split: Split | None
    outcomes: dict[tuple[str, str], Outcome]  # (system, variant) -> outcome
    error: str | None = None

    def get(self, system: str, variant: str = FAIR) -> Outcome | None:
        """The outcome of a system; without leaks there is only the as-given variant."""
        if system == "DSAssist":
            return self.outcomes.get((system, AS_GIVEN))
        if variant == FAIR and (system, FAIR) in self.outcomes:
            return self.outcomes[(system, FAIR)]
        return self.outcomes.get((system, AS_GIVEN))


# ---- small helpers ----------------------------------------------------------------------


def progress(text: str) -> None:
    print(f"  .. {text}", flush=True)


def fmt(value: float | None) -> str:
    if value is None or not np.isfinite(value):
        return "-"
    return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.4f}"


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def oriented_gain(a: float, b: float, metric: str) -> float:
    """How much better a is than b, positive when a is better, in the metric's units."""
    return a - b if HIGHER_IS_BETTER[metric] else b - a


def ratio(dsassist_score: float, other: float, metric: str) -> float:
    """DSAssist / other for scores, other / DSAssist for losses: > 1 means DSAssist is better."""
    num, den = (dsassist_score, other) if HIGHER_IS_BETTER[metric] else (other, dsassist_score)
    return num / den if den else float("nan")


# ---- data -------------------------------------------------------------------------------


def read_suite(data_dir: Path) -> list[DatasetSpec]:
    suite = json.loads((data_dir / "suite.json").read_text())
    return [
        DatasetSpec(d["name"], data_dir / d["path"], d["target"], d["task"], d["metric"])
        for d in suite["datasets"]
        if d["path"].startswith("tabular/")
    ]


def make_split(spec: DatasetSpec) -> Split:
    """The 80/20 split (seed 0, stratified for classification) and the leaky columns."""
    df = load_table(str(spec.path))
    df = df[df[spec.target].notna()].reset_index(drop=True)
    X, y = df.drop(columns=[spec.target]), df[spec.target]
    stratify = y if spec.task != "regression" else None
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=TEST_SIZE, random_state=SEED, stratify=stratify
    )
    labels = sorted(y_train.unique()) if spec.task != "regression" else []
    suspicious = profile_data(X_train, y_train, spec.task)["suspicious"]
    leaks = {c: why for c, why in suspicious.items() if why.startswith("leak")}
    return Split(X_train, y_train, X_test, y_test, labels, leaks)


def as_categories(train: pd.DataFrame, test: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """String columns as pandas categories, with the training rows' categories on both sides."""
    train, test = train.copy(), test.copy()
    for col in train.columns:
        if pd.api.types.is_object_dtype(train[col]) or pd.api.types.is_string_dtype(train[col]):
            dtype = pd.CategoricalDtype(train[col].dropna().unique())
            train[col], test[col] = train[col].astype(dtype), test[col].astype(dtype)
    return train, test


# ---- scoring ----------------------------------------------------------------------------


def score(task: str, split: Split, pred: Predictions) -> dict[str, float]:
    y = split.y_test.to_numpy()
    if task == "regression":
        return {"rmse": float(np.sqrt(mean_squared_error(y, pred.label.astype(float))))}
    if pred.proba is None:
        raise ValueError("no class probabilities")
    if task == "binary":
        positive = split.labels[-1]
        return {"roc_auc": float(roc_auc_score(y == positive, pred.proba[:, -1]))}
    return {
        "accuracy": float(accuracy_score(y, pred.label)),
        "log_loss": float(log_loss(y, pred.proba, labels=split.labels)),
    }


def columns_in_label_order(proba: np.ndarray, classes: list[Any], labels: list[Any]) -> np.ndarray:
    """Reorder probability columns from a model's class order to the sorted label order."""
    position = {str(c): i for i, c in enumerate(classes)}
    missing = [label for label in labels if str(label) not in position]
    if missing:
        raise ValueError(f"no probability column for classes {missing}")
    return proba[:, [position[str(label)] for label in labels]]


def timed(run: Callable[[], tuple[Predictions, dict[str, Any]]], task: str, split: Split) -> Outcome:
    """Run one system, score it, and keep any error with its traceback instead of raising."""
    start = time.perf_counter()
    try:
        pred, details = run()
        wall = time.perf_counter() - start
        return Outcome(scores=score(task, split, pred), wall_s=wall, details=details)
    except Exception as exc:  # a benchmark reports every failure and goes on
        wall = time.perf_counter() - start
        return Outcome(wall_s=wall, error=first_line(exc), trace=traceback.format_exc())


# ---- the systems ------------------------------------------------------------------------


def run_dsassist(spec: DatasetSpec, split: Split, budget: float, folder: Path) -> Outcome:
    def fit_predict() -> tuple[Predictions, dict[str, Any]]:
        folder.mkdir(parents=True, exist_ok=True)
        train_csv, test_csv = folder / "train.csv", folder / "test.csv"
        split.X_train.assign(**{spec.target: split.y_train}).to_csv(train_csv, index=False)
        split.X_test.to_csv(test_csv, index=False)
        out = folder / "run"
        result = dsassist.run(
            train_csv, target=spec.target, out=out, budget=budget, seed=SEED, max_steps=MAX_STEPS
        )
        details = dsassist_details(result, out)
        frame = dsassist.predict(out, test_csv)
        proba = None
        if spec.task != "regression":
            names = [c for c in frame.columns if c.startswith("proba_")]
            proba = columns_in_label_order(
                frame[names].to_numpy(float), [n.removeprefix("proba_") for n in names], split.labels
            )
        return Predictions(frame["prediction"].to_numpy(), proba), details

    return timed(fit_predict, spec.task, split)


def dsassist_details(result: Any, out: Path) -> dict[str, Any]:
    """What the run says about itself: CV score and spread, steps, the best model, failures."""
    details = {
        "metric": result.metric,
        "cv": result.best_score,
        "std": result.best_std,
        "steps": result.steps,
        "failed": result.failed_steps,
        "fixed": result.fixed_steps,
        "stop": result.stop_reason,
        "elapsed_s": result.elapsed_s,
        "task": result.task,
    }
    meta = out / "model.json"
    if meta.is_file():
        spec = json.loads(meta.read_text()).get("spec", {})
        details["model"] = spec.get("model")
    details["failures"] = failed_steps(out / "provenance.db")
    return details


def failed_steps(db: Path) -> list[str]:
    if not db.is_file():
        return []
    con = sqlite3.connect(db)
    try:
        rows = con.execute(
            "SELECT id, template_id, error FROM steps WHERE verdict = 'failed' ORDER BY id"
        ).fetchall()
    finally:
        con.close()
    return [f"step {i} {template}: {(error or '').strip().splitlines()[-1:]}" for i, template, error in rows]


def run_flaml(task: str, split: Split, columns: list[str], budget: float) -> Outcome:
    def fit_predict() -> tuple[Predictions, dict[str, Any]]:
        from flaml import AutoML

        X_train, X_test = as_categories(split.X_train[columns], split.X_test[columns])
        automl = AutoML()
        automl.fit(
            X_train,
            split.y_train,
            task="regression" if task == "regression" else "classification",
            time_budget=budget,
            metric=FLAML_METRIC[task],
            seed=SEED,
            n_jobs=FLAML_JOBS,
            verbose=0,
        )
        details = {"model": automl.best_estimator}
        if task == "regression":
            return Predictions(np.asarray(automl.predict(X_test))), details
        proba = columns_in_label_order(automl.predict_proba(X_test), list(automl.classes_), split.labels)
        return Predictions(np.asarray(automl.predict(X_test)), proba), details

    return timed(fit_predict, task, split)


def run_lightgbm(task: str, split: Split, columns: list[str]) -> Outcome:
    def fit_predict() -> tuple[Predictions, dict[str, Any]]:
        from lightgbm import LGBMClassifier, LGBMRegressor

        X_train, X_test = as_categories(split.X_train[columns], split.X_test[columns])
        if task == "regression":
            model = LGBMRegressor(verbose=-1).fit(X_train, split.y_train)
            return Predictions(model.predict(X_test)), {}
        model = LGBMClassifier(verbose=-1).fit(X_train, split.y_train)
        proba = columns_in_label_order(model.predict_proba(X_test), list(model.classes_), split.labels)
        return Predictions(model.predict(X_test), proba), {}

    return timed(fit_predict, task, split)


def run_dataset(spec: DatasetSpec, budget: float, root: Path) -> DatasetResult:
    heading(f"{spec.name}: {spec.task}, target {spec.target!r}")
    try:
        split = make_split(spec)
    except Exception as exc:
        print(traceback.format_exc(), flush=True)
        return DatasetResult(spec, None, {}, error=first_line(exc))
    print(
        f"{len(split.X_train)} training rows, {len(split.X_test)} test rows, "
        f"{split.X_train.shape[1]} feature columns; leaky: {split.leaks or 'none'}; {load_average()}",
        flush=True,
    )
    outcomes: dict[tuple[str, str], Outcome] = {}
    outcomes[("DSAssist", AS_GIVEN)] = report("DSAssist", run_dsassist(spec, split, budget, root / spec.name))
    variants = {AS_GIVEN: list(split.X_train.columns)}
    if split.leaks:
        variants[FAIR] = [c for c in split.X_train.columns if c not in split.leaks]
    for variant, columns in variants.items():
        outcomes[("FLAML", variant)] = report(
            f"FLAML ({variant})", run_flaml(spec.task, split, columns, budget)
        )
        outcomes[("LightGBM", variant)] = report(
            f"LightGBM ({variant})", run_lightgbm(spec.task, split, columns)
        )
    return DatasetResult(spec, split, outcomes)


def report(name: str, outcome: Outcome) -> Outcome:
    if outcome.ok:
        scores = ", ".join(f"{m} {fmt(v)}" for m, v in outcome.scores.items())
        progress(f"{name}: {scores} in {outcome.wall_s:.1f} s {outcome.details or ''}")
    else:
        progress(f"{name}: error after {outcome.wall_s:.1f} s: {outcome.error}")
    return outcome


# ---- the table --------------------------------------------------------------------------

COLUMNS = (
    ("dataset", 9),
    ("task", 10),
    ("metric", 8),
    ("DSAssist", 9),
    ("FLAML", 9),
    ("LightGBM", 9),
    ("t DSA", 7),
    ("t FLAML", 7),
    ("t LGBM", 7),
    ("DSA/FLAML", 9),
    ("spread", 7),
    ("DSA-LGBM", 9),
)


def cell(outcome: Outcome | None, metric: str) -> str:
    if outcome is None:
        return "-"
    if not outcome.ok:
        return "error"
    return fmt(outcome.scores.get(metric))


def wall(outcome: Outcome | None) -> str:
    return "-" if outcome is None else f"{outcome.wall_s:.0f}s"


def score_of(outcome: Outcome | None, metric: str) -> float | None:
    return outcome.scores.get(metric) if outcome is not None and outcome.ok else None


def spread(result: DatasetResult, metric: str) -> float | None:
    """DSAssist's fold spread, when its CV metric is the metric shown."""
    dsa = result.get("DSAssist")
    if dsa is None or not dsa.ok or dsa.details.get("metric") != metric:
        return None
    return dsa.details.get("std")


def table_row(result: DatasetResult, metric: str, counted: bool) -> str:
    spec = result.spec
    dsa, fl, lg = (result.get(s) for s in SYSTEMS)
    d, f, g = (score_of(o, metric) for o in (dsa, fl, lg))
    fair = "*" if result.split is not None and result.split.leaks else ""
    r = ratio(d, f, metric) if d is not None and f is not None else None
    gap = oriented_gain(d, g, metric) if d is not None and g is not None else None
    cells = [
        spec.name,
        spec.task,
        metric if counted else f"({metric})",
        cell(dsa, metric),
        cell(fl, metric) + fair,
        cell(lg, metric) + fair,
        wall(dsa),
        wall(fl),
        wall(lg),
        "-" if r is None else f"{r:.4f}",
        fmt(spread(result, metric)) if counted else "",
        "-" if gap is None else f"{gap:+.4f}" if abs(gap) < 1000 else f"{gap:+.0f}",
    ]
    return aligned(cells)


def aligned(cells: list[str]) -> str:
    """The first three cells left-aligned, the figures right-aligned, to the widths of COLUMNS."""
    widths = [w for _, w in COLUMNS]
    return " ".join(
        f"{c:<{w}}" if i < 3 else f"{c:>{w}}" for i, (c, w) in enumerate(zip(cells, widths, strict=True))
    )


def print_table(results: list[DatasetResult]) -> None:
    heading("test scores on the held-out 20% (seed 0)")
    print(aligned([n for n, _ in COLUMNS]))
    for result in results:
        if result.error is not None:
            print(f"{result.spec.name:<9} {result.spec.task:<10} error: {result.error}")
            continue
        for metric in SHOWN[result.spec.task]:
            print(table_row(result, metric, counted=metric == PRIMARY[result.spec.task]))
    print(
        "\nDSA/FLAML: DSAssist / FLAML for AUC and accuracy, FLAML / DSAssist for RMSE and log-loss,"
        " so > 1 means DSAssist is better."
        "\nDSA-LGBM: DSAssist minus LightGBM, oriented so > 0 means DSAssist is better (metric units)."
        "\nspread: DSAssist's fold spread (result.best_std of its best pipeline, in its CV metric)."
        "\n*: FLAML and LightGBM without the leaky columns (the fair variant; DSAssist drops them too)."
        "\n(metric): shown, not counted. t: wall time of fit and predict, in seconds."
    )


def print_as_given(results: list[DatasetResult]) -> None:
    leaky = [r for r in results if r.split is not None and r.split.leaks]
    heading("datasets with leaky columns: FLAML and LightGBM as given vs without them")
    if not leaky:
        print("no leaky columns flagged")
        return
    names = ("FLAML", "t FLAML", "LightGBM", "t LGBM")
    print(f"{'dataset':<9} {'metric':<8} {'variant':<14} " + " ".join(f"{n:>8}" for n in names))
    for result in leaky:
        metric = PRIMARY[result.spec.task]
        for variant in (AS_GIVEN, FAIR):
            fl, lg = result.outcomes.get(("FLAML", variant)), result.outcomes.get(("LightGBM", variant))
            print(
                f"{result.spec.name:<9} {metric:<8} {variant:<14} {cell(fl, metric):>8} {wall(fl):>8}"
                f" {cell(lg, metric):>8} {wall(lg):>8}"
            )
        dsa = result.get("DSAssist")
        print(f"{'':<9} {'':<8} {'DSAssist':<14} {cell(dsa, metric):>8}")
        for column, why in result.split.leaks.items():
            print(f"{'':<9} leaky {column!r}: {why}")


def print_details(results: list[DatasetResult]) -> None:
    heading("what each run did")
    for result in results:
        dsa, fl = result.get("DSAssist"), result.get("FLAML")
        if dsa is not None and dsa.ok:
            d = dsa.details
            print(
                f"{result.spec.name:<9} DSAssist: CV {d['metric']} {fmt(d['cv'])} ± {fmt(d['std'])},"
                f" best model {d.get('model')}, {d['steps']} steps"
                f" ({d['failed']} failed, {d['fixed']} fixed),"
                f" run {d['elapsed_s']:.0f} s, stop: {d['stop']}"
            )
            if d["task"] != result.spec.task:
                print(
                    f"{'':<9} note: DSAssist inferred task {d['task']!r}, the suite says {result.spec.task!r}"
                )
            for failure in d["failures"]:
                print(f"{'':<9}   failed {failure}")
        if fl is not None and fl.ok:
            print(f"{'':<9} FLAML: best estimator {fl.details.get('model')}")


# ---- counts and targets -----------------------------------------------------------------


def compare(results: list[DatasetResult], other: str, variant: str) -> tuple[int, int, int, int]:
    """Wins, ties and losses of DSAssist against `other` on the primary metric, and how many compared."""
    wins = ties = losses = 0
    for result in results:
        metric = PRIMARY[result.spec.task]
        d = score_of(result.get("DSAssist"), metric)
        o = score_of(result.get(other, variant), metric)
        if d is None or o is None:
            continue
        gain = oriented_gain(d, o, metric)
        if abs(gain) <= 1e-12 * max(1.0, abs(o)):
            ties += 1
        elif gain > 0:
            wins += 1
        else:
            losses += 1
    return wins, ties, losses, wins + ties + losses


def worse_than_spread(results: list[DatasetResult]) -> tuple[list[str], list[str]]:
    """Datasets where DSAssist trails LightGBM (fair) by more than its fold spread; and unchecked ones."""
    worse, unchecked = [], []
    for result in results:
        metric = PRIMARY[result.spec.task]
        d = score_of(result.get("DSAssist"), metric)
        g = score_of(result.get("LightGBM"), metric)
        s = spread(result, metric)
        if d is None or g is None or s is None:
            unchecked.append(result.spec.name)
        elif oriented_gain(d, g, metric) < -s:
            worse.append(f"{result.spec.name} (behind by {fmt(-oriented_gain(d, g, metric))} > {fmt(s)})")
    return worse, unchecked


def print_counts(results: list[DatasetResult]) -> None:
    heading("counts (primary metric: AUC, accuracy or RMSE)")
    lines = []
    for other in ("FLAML", "LightGBM"):
        for variant in (FAIR, AS_GIVEN):
            w, t, lo, n = compare(results, other, variant)
            label = "fair: without leaky columns" if variant == FAIR else "as given, leaky columns kept"
            lines.append((other, variant, w, t, lo, n))
            print(
                f"DSAssist vs {other:<8} ({label}): wins {w} of {n}, ties {t}, losses {lo}"
                + ("   <- counted" if variant == FAIR else "")
            )
    w, t, _, n = compare(results, "FLAML", FAIR)
    worse, unchecked = worse_than_spread(results)
    print(f"\ntarget 1: DSAssist >= FLAML (fair) on most datasets: {w + t} of {n}: {verdict(w + t > n / 2)}")
    print(
        "target 2: never worse than default LightGBM (fair) by more than the fold spread: "
        + (f"worse on {', '.join(worse)}" if worse else "never")
        + f": {verdict(not worse)}"
        + (f"  (not checked: {', '.join(unchecked)})" if unchecked else "")
    )


def print_errors(results: list[DatasetResult]) -> None:
    failures = [
        (r.spec.name, system, variant, o)
        for r in results
        for (system, variant), o in r.outcomes.items()
        if not o.ok
    ]
    heading(f"errors: {len(failures)}")
    for name, system, variant, outcome in failures:
        print(f"-- {name} / {system} ({variant}): {outcome.error}\n{outcome.trace}")


# ---- main -------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=60.0, help="seconds for DSAssist and FLAML (60)")
    parser.add_argument("--datasets", default="", help="comma-separated names (default: all tabular ones)")
    parser.add_argument(
        "--data-dir", type=Path, default=DEFAULT_DATA_DIR, help=f"the suite's folder ({DEFAULT_DATA_DIR})"
    )
    return parser.parse_args()


def chosen(specs: list[DatasetSpec], names: str) -> list[DatasetSpec]:
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    if not wanted:
        return specs
    known = {s.name: s for s in specs}
    unknown = [n for n in wanted if n not in known]
    if unknown:
        print(f"unknown datasets skipped: {', '.join(unknown)} (known: {', '.join(known)})")
    return [known[n] for n in wanted if n in known]


def versions() -> str:
    import flaml
    import lightgbm
    import sklearn

    return (
        f"python {platform.python_version()}, dsassist {dsassist.__version__},"
        f" flaml {flaml.__version__}, lightgbm {lightgbm.__version__}, scikit-learn {sklearn.__version__}"
    )


def main() -> int:
    args = parse_args()
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=UserWarning)
    specs = chosen(read_suite(args.data_dir), args.datasets)
    started = time.perf_counter()
    print(versions())
    print(f"{os.cpu_count()} CPUs, {load_average()}; budget {args.budget:.0f} s; data {args.data_dir}")
    print(f"datasets: {', '.join(s.name for s in specs)}", flush=True)
    with tempfile.TemporaryDirectory(prefix="dsassist-quality-") as tmp:
        results = [run_dataset(spec, args.budget, Path(tmp)) for spec in specs]
    print_table(results)
    print_as_given(results)
    print_details(results)
    print_counts(results)
    print_errors(results)
    print(f"\nbenchmark wall time {time.perf_counter() - started:.0f} s; {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
