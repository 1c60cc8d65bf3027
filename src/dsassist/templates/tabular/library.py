"""The offline library of tabular experiments, in the order a careful analyst tries them.

Conventions inside the kernel: `X`, `y` the raw features and target; `profile`, `columns`,
`folds` set once; `spec` the best pipeline so far. A judged cell defines `candidate_spec`
and `result` (its metrics); when the step is kept the controller runs `spec = candidate_spec`.
"""

from __future__ import annotations

from typing import Any

from dsassist.messages import RunView, Verdict
from dsassist.templates.base import Params, Template
from dsassist.templates.tabular import search
from dsassist.templates.tabular.toolkit import SCALED

EVALUATE = "result = evaluate(build_pipeline(candidate_spec, columns, TASK, SEED), X, y, folds, METRIC, TASK)"

JUDGED_PROMPT = """You are testing one hypothesis about a tabular $task problem: $hypothesis
The live kernel already holds (do not reload or re-import):
$state
Write ONE Python cell that defines `candidate_spec` (a change of `spec`) and ends with
`result = evaluate(build_pipeline(candidate_spec, columns, TASK, SEED), X, y, folds, METRIC, TASK)`.
Reference cell:
```python
$code
```"""

STEP_PROMPT = """Write ONE Python cell for this step of a tabular analysis: $hypothesis
The live kernel already holds:
$state
Reference cell:
```python
$code
```"""


# ---- what the planner knows about the run ---------------------------------------------


def usable(run: RunView, kind: str) -> list[str]:
    """Columns of one kind that the guard step kept."""
    excluded = run.profile.get("suspicious", {})
    return [
        c for c, info in run.profile.get("columns", {}).items() if info["kind"] == kind and c not in excluded
    ]


def best_spec(run: RunView) -> dict[str, Any]:
    """The pipeline spec of the best step."""
    return spec_of(run, run.best_step)


def spec_of(run: RunView, step_id: int | None) -> dict[str, Any]:
    """The pipeline spec a step was judged with: the changes along its chain of parents."""
    by_id = {s.id: s for s in run.steps}
    chain, node = [], by_id.get(step_id) if step_id is not None else None
    while node is not None:
        chain.append(node)
        node = by_id.get(node.parent) if node.parent is not None else None
    spec: dict[str, Any] = {}
    for step in reversed(chain):
        spec.update(step.params.get("change", {}))
    return spec


def _kept(run: RunView, template_id: str) -> bool:
    return any(s.template_id == template_id and s.verdict == Verdict.DONE for s in run.steps)


def _has_model(run: RunView) -> bool:
    return any(s.kind == "model" and s.verdict in (Verdict.ACCEPTED, Verdict.REJECTED) for s in run.steps)


def best_per_model(run: RunView, kept_only: bool = False) -> dict[str, int]:
    """The best judged (or only kept) step of each model family, without dummy and ensemble."""
    verdicts = (Verdict.ACCEPTED,) if kept_only else (Verdict.ACCEPTED, Verdict.REJECTED)
    best: dict[str, Any] = {}
    for s in run.steps:
        if s.metrics is None or s.verdict not in verdicts:
            continue
        model = spec_of(run, s.id).get("model")  # the spec the step was judged with, kept or not
        if model in (None, "dummy", "ensemble"):
            continue
        if model not in best or s.metrics.gain_over(best[model].metrics) > 0:
            best[model] = s
    return {model: s.id for model, s in best.items()}


# ---- when each template applies -------------------------------------------------------


def _after(template_id: str):
    def applies(run: RunView) -> list[Params]:
        return [{}] if _kept(run, template_id) else []

    return applies


def _setup(run: RunView) -> list[Params]:
    if run.options.get("target") is None:
        return []
    keys = ("seed", "task", "metric", "target", "path")
    return [{k: run.options[k] for k in keys}]


def _load(run: RunView) -> list[Params]:
    """A run without a target (an open question) only loads the table for the subtasks."""
    return [{"path": run.options["path"]}] if run.options.get("target") is None else []


def _validation(run: RunView) -> list[Params]:
    if not _kept(run, "guard"):
        return []
    opts, profile = run.options, run.profile
    n_splits = int(opts.get("folds", 5))
    if opts.get("time_column") or (not opts.get("group_column") and profile.get("time_column")):
        column = opts.get("time_column") or profile["time_column"]
        return [
            {
                "scheme": "time",
                "n_splits": n_splits,
                "column": column,
                "why": f"rows are ordered by {column!r}",
            }
        ]
    if opts.get("group_column") or profile.get("group_column"):
        column = opts.get("group_column") or profile["group_column"]
        return [
            {"scheme": "group", "n_splits": n_splits, "column": column, "why": f"rows repeat per {column!r}"}
        ]
    if run.task == "regression":
        return [{"scheme": "kfold", "n_splits": n_splits, "column": None, "why": "independent rows"}]
    return [
        {"scheme": "stratified", "n_splits": n_splits, "column": None, "why": "keeps class balance per fold"}
    ]


def _baseline(run: RunView) -> list[Params]:
    return [{"change": {"model": "dummy"}}] if _kept(run, "validation") else []


def _model(name: str, max_rows: int | None = None):
    def applies(run: RunView) -> list[Params]:
        baseline_done = any(s.kind == "baseline" and s.verdict == Verdict.ACCEPTED for s in run.steps)
        small = max_rows is None or run.profile.get("rows", 0) <= max_rows
        return [{"change": {"model": name, "params": {}}}] if baseline_done and small else []

    return applies


def _feature(change_for):
    """Feature templates apply once a real model has been tried, to the best single pipeline."""

    def applies(run: RunView) -> list[Params]:
        if not _has_model(run) or best_spec(run).get("model") == "ensemble":
            return []
        change = change_for(run)
        return [{"change": change}] if change else []

    return applies


def _missing(run: RunView) -> dict[str, Any] | None:
    gaps = [c for c in usable(run, "numeric") if run.profile["columns"][c]["missing"] > 0]
    return {"missing_indicators": True} if gaps else None


def _other_encoding(run: RunView) -> dict[str, Any] | None:
    """The encoding a model does not get by default: ordinal codes for linear, one-hot for trees."""
    if not usable(run, "categorical"):
        return None
    return {"categorical": "ordinal" if best_spec(run).get("model") in SCALED else "onehot"}


def _target_encoding(run: RunView) -> dict[str, Any] | None:
    wide = [c for c in usable(run, "categorical") if run.profile["columns"][c]["unique"] > 10]
    return {"categorical": "target"} if wide else None


def _skewed(run: RunView) -> dict[str, Any] | None:
    cols = [c for c in usable(run, "numeric") if abs(run.profile["columns"][c].get("skew", 0)) > 1.0]
    return {"log_features": cols} if cols else None


def _dates(run: RunView) -> dict[str, Any] | None:
    return {"date_parts": True} if usable(run, "datetime") else None


def _text(run: RunView) -> dict[str, Any] | None:
    return {"text": True} if usable(run, "text") else None


def _log_target(run: RunView) -> dict[str, Any] | None:
    target = run.profile.get("target", {})
    skewed = run.task == "regression" and target.get("skew", 0) > 1.0 and target.get("min", -1) >= 0
    return {"log_target": True} if skewed else None


TUNING = {
    "lightgbm": [
        {"n_estimators": 500, "learning_rate": 0.02},
        {"num_leaves": 15, "min_child_samples": 10},
        {"num_leaves": 63, "min_child_samples": 30, "reg_lambda": 1.0},
        {"subsample": 0.8, "subsample_freq": 1, "colsample_bytree": 0.8},
    ],
    "random_forest": [{"min_samples_leaf": 3}, {"max_features": 0.3}, {"n_estimators": 500}],
    "extra_trees": [{"min_samples_leaf": 3}, {"max_features": 0.8}],
    "knn": [{"n_neighbors": 5}, {"n_neighbors": 40}],
    "linear": [{"C": 0.1}, {"C": 10.0}],
}


def _tuning(run: RunView) -> list[Params]:
    if not _has_model(run):
        return []
    spec = best_spec(run)
    model = spec.get("model", "dummy")
    variants = TUNING.get(model, [])
    if model == "linear" and run.task == "regression":
        variants = [{"alpha": 10.0}, {"alpha": 0.1}]
    base = spec.get("params", {})
    tried = [s.params.get("variant") for s in run.steps if s.template_id == "tune"]
    fresh = [v for v in variants if v not in tried]  # each variant once, even after the base moved
    return [{"change": {"params": {**base, **v}}, "model": model, "variant": v} for v in fresh]


def _ensemble(run: RunView) -> list[Params]:
    """Average the best pipeline of each of the top three model families."""
    if not _has_model(run) or best_spec(run).get("model") == "ensemble":
        return []
    top = _ranked(run, list(best_per_model(run).values()))[:3]
    if len(top) < 2:
        return []
    members = [spec_of(run, i) for i in top]
    return [{"change": {"model": "ensemble", "members": members, "params": {}}, "from_steps": top}]


def single_best(run: RunView) -> int | None:
    """The best kept step of a single model family: where parameter search builds on.

    Kept, because only a kept step's kernel state holds the spec it was judged with.
    """
    ranked = _ranked(run, list(best_per_model(run, kept_only=True).values()))
    return ranked[0] if ranked else None


def _ranked(run: RunView, step_ids: list[int]) -> list[int]:
    """Step ids, best score first."""
    by_id = {s.id: s for s in run.steps}
    scores = {i: by_id[i].metrics.mean * (1 if by_id[i].metrics.higher_is_better else -1) for i in step_ids}
    return sorted(step_ids, key=lambda i: -scores[i])


def _explore(run: RunView) -> list[Params]:
    """The next Bayesian sample of parameters for the best single-model pipeline."""
    if not _has_model(run) or any(_untried_model(run)):
        return []
    step_id = single_best(run)
    model = spec_of(run, step_id).get("model") if step_id is not None else None
    if model is None:
        return []
    sampled = search.propose(run, model, int(run.options.get("seed", 0)), "explore")
    if sampled is None:
        return []
    trials = [*run.steps, *run.running]
    trial = sum(1 for s in trials if s.template_id == "explore" and s.params.get("model") == model)
    params = {**sampled, **search.FIXED.get(model, {})}
    return [{"change": {"params": params}, "model": model, "sampled": sampled, "trial": trial + 1}]


def _untried_model(run: RunView) -> list[str]:
    tried = {s.template_id for s in run.steps}
    return [t.id for t in TEMPLATES if t.kind == "model" and t.id not in tried and t.applies(run)]


def _final(run: RunView) -> list[Params]:
    return [{}] if _kept(run, "validation") else []


# ---- the library ----------------------------------------------------------------------

SETUP = """
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from dsassist.templates.tabular.toolkit import (
    BASE_SPEC, build_pipeline, drivers, evaluate, feature_columns, load_table, make_folds,
    profile_data, publish, recheck, save_model,
)

SEED, TASK, METRIC, TARGET = $seed, $task, $metric, $target
df = load_table($path)
df = df[df[TARGET].notna()].reset_index(drop=True)
X, y = df.drop(columns=[TARGET]), df[TARGET]
print(f"{len(df)} rows, {X.shape[1]} feature columns; target {TARGET!r} ({TASK}, scored by {METRIC})")
"""

LOAD = """
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from dsassist.templates.tabular.toolkit import load_table

df = load_table($path)
print(f"{len(df)} rows, {df.shape[1]} columns")
print(df.dtypes.to_string())
"""

PROFILE = """
profile = profile_data(X, y, TASK)
publish("profile", profile)
print(pd.DataFrame(profile["columns"]).T.to_string())
print("target:", profile["target"])
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
(y.value_counts().plot.bar(ax=axes[0]) if TASK != "regression" else y.plot.hist(bins=30, ax=axes[0]))
axes[0].set_title(f"target: {TARGET}")
X.isna().mean().sort_values().plot.barh(ax=axes[1], title="share missing")
plt.tight_layout()
plt.show()
"""

GUARD = """
exclude = dict(profile["suspicious"])
for column, why in exclude.items():
    print(f"excluding {column!r}: {why}")
columns = feature_columns(profile, exclude)
publish("columns", {"exclude": exclude, "columns": columns})
print({kind: len(cols) for kind, cols in columns.items()})
"""

VALIDATION = """
VALIDATION = {"scheme": $scheme, "n_splits": $n_splits, "column": $column}
folds = make_folds(X, y, TASK, **VALIDATION, seed=SEED)
publish("validation", {**VALIDATION, "n_splits": len(folds), "why": $why})
print(f"{$scheme} validation, {len(folds)} folds, validation sizes {[len(v) for _, v in folds]}")
spec = dict(BASE_SPEC)
"""

JUDGED = (
    """
candidate_spec = {**spec, **$change}
"""
    + EVALUATE
)

FINAL = """
final_model = build_pipeline(spec, columns, TASK, SEED).fit(X, y)
classes = [str(c) for c in getattr(final_model, "classes_", [])]
meta = {"target": TARGET, "task": TASK, "metric": METRIC, "features": list(X.columns),
        "classes": classes, "spec": spec}
save_model(final_model, "model.pkl", meta)
importance = drivers(build_pipeline(spec, columns, TASK, SEED), columns, X, y, folds, METRIC, TASK, SEED)
importance["importance"].iloc[::-1].plot.barh(figsize=(7, 4), title=f"what drives {TARGET}")
plt.tight_layout()
plt.show()
print(importance.to_string())
"""


def _judged(id: str, kind: str, hypothesis: str, applies, tags: tuple[str, ...] = ()) -> Template:
    return Template(id, kind, hypothesis, JUDGED, applies, prompt=JUDGED_PROMPT, tags=tags)


def _step(id: str, kind: str, hypothesis: str, code: str, applies) -> Template:
    return Template(id, kind, hypothesis, code, applies, prompt=STEP_PROMPT, judged=False)


TEMPLATES: list[Template] = [
    _step("setup", "setup", "Load the data once; the target is {target!r}", SETUP, _setup),
    _step("load", "setup", "Load the table for the question's subtasks", LOAD, _load),
    _step(
        "profile",
        "profile",
        "Profile columns, missing values, target balance and suspects",
        PROFILE,
        _after("setup"),
    ),
    _step(
        "guard",
        "guard",
        "Exclude identifiers, constants, duplicates and leaks before modelling",
        GUARD,
        _after("profile"),
    ),
    _step(
        "validation",
        "validation",
        "Validate with {scheme} {n_splits}-fold splits: {why}",
        VALIDATION,
        _validation,
    ),
    _judged("baseline", "baseline", "A dummy baseline sets the score to beat", _baseline),
    _judged("linear", "model", "A regularised linear model beats the best so far", _model("linear")),
    _judged("lightgbm", "model", "Gradient boosting (LightGBM) beats the best so far", _model("lightgbm")),
    _judged("random_forest", "model", "A random forest beats the best so far", _model("random_forest")),
    _judged("extra_trees", "model", "Extremely randomised trees beat the best so far", _model("extra_trees")),
    _judged("knn", "model", "k nearest neighbours beat the best so far (small data)", _model("knn", 5000)),
    _judged(
        "missing_indicators",
        "feature",
        "Missing-value indicators carry signal",
        _feature(_missing),
        ("imputation",),
    ),
    _judged(
        "other_encoding",
        "feature",
        "{change[categorical]} encoding of categoricals beats the model's default",
        _feature(_other_encoding),
        ("encoding",),
    ),
    _judged(
        "target_encoding",
        "feature",
        "Target encoding of wide categoricals helps",
        _feature(_target_encoding),
        ("encoding",),
    ),
    _judged(
        "log_skewed",
        "feature",
        "A log transform of skewed numeric columns helps",
        _feature(_skewed),
        ("transform",),
    ),
    _judged(
        "date_parts",
        "feature",
        "Year, month, weekday and hour of dates carry signal",
        _feature(_dates),
        ("dates",),
    ),
    _judged(
        "text_tfidf",
        "feature",
        "Words of the free-text columns (TF-IDF) carry signal",
        _feature(_text),
        ("text",),
    ),
    _judged(
        "log_target",
        "feature",
        "Modelling log(target) suits this skewed target",
        _feature(_log_target),
        ("transform",),
    ),
    _judged("tune", "tuning", "Tuning {model}: {variant} beats the current settings", _tuning),
    _judged("ensemble", "ensemble", "Averaging the best of steps {from_steps} beats each of them", _ensemble),
    Template(
        "explore",
        "explore",
        "Bayesian sample {trial} for {model}: {sampled}",
        JUDGED,
        _explore,
        prompt=JUDGED_PROMPT,
        parent=single_best,
    ),
    _step(
        "final",
        "final",
        "Refit the best pipeline on all rows, save it, explain what drives the target",
        FINAL,
        _final,
    ),
]
