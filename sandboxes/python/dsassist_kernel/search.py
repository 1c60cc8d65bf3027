"""Bayesian parameter sampling (Optuna TPE) for the best pipeline of a model family.

The sampler keeps no state between calls: each proposal rebuilds the study from the trials
that the controller recorded as steps, with a seed that moves on with every trial, so runs
are reproducible and resumable. The explore cell calls `sample_candidate`.
"""

from __future__ import annotations

from typing import Any

from .toolkit import publish

FIXED = {"lightgbm": {"subsample_freq": 1}}  # set with every sample so that subsample takes effect
ASKS = 20  # small discrete spaces repeat themselves: ask again, up to a point


class SearchExhausted(RuntimeError):
    """Every parameter set the sampler offers for this model was tried already."""


def space(model: str, task: str) -> dict[str, Any]:
    from optuna.distributions import CategoricalDistribution as Cat
    from optuna.distributions import FloatDistribution as Float
    from optuna.distributions import IntDistribution as Int

    if model == "lightgbm":
        return {
            "n_estimators": Int(50, 1000, log=True),
            "learning_rate": Float(0.01, 0.3, log=True),
            "num_leaves": Int(7, 127, log=True),
            "min_child_samples": Int(3, 100, log=True),
            "subsample": Float(0.5, 1.0),
            "colsample_bytree": Float(0.3, 1.0),
            "reg_lambda": Float(1e-3, 10.0, log=True),
        }
    if model in ("random_forest", "extra_trees"):
        return {
            "n_estimators": Int(100, 500, log=True),
            "max_features": Float(0.1, 1.0),
            "min_samples_leaf": Int(1, 20, log=True),
        }
    if model == "knn":
        return {"n_neighbors": Int(3, 60, log=True), "weights": Cat(["uniform", "distance"])}
    if model == "linear":
        return (
            {"alpha": Float(1e-3, 1e3, log=True)}
            if task == "regression"
            else {"C": Float(1e-3, 1e2, log=True)}
        )
    return {}


def propose(
    model: str,
    task: str,
    trials: list[dict[str, Any]],
    pending: list[dict[str, Any]],
    seed: int,
    higher_is_better: bool,
) -> dict[str, Any] | None:
    """The next parameters to try for `model`, or None when its space is exhausted.

    `trials` are the earlier samples of this model, [{"params": {...}, "score": mean or None
    for a failed one}]; `pending` the parameters running on parallel branches (taken, their
    scores unknown). Floats are rounded to 6 places; the same inputs give the same answer.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions = space(model, task)
    if not distributions:
        return None
    sampler = optuna.samplers.TPESampler(seed=seed + len(trials) + len(pending), n_startup_trials=5)
    study = optuna.create_study(direction="maximize" if higher_is_better else "minimize", sampler=sampler)
    for t in trials:
        failed = t.get("score") is None
        study.add_trial(
            optuna.trial.create_trial(
                state=optuna.trial.TrialState.FAIL if failed else optuna.trial.TrialState.COMPLETE,
                value=None if failed else float(t["score"]),
                params=t["params"],
                distributions={k: distributions[k] for k in t["params"]},
            )
        )
    seen = {_key(t["params"]): t.get("score") for t in trials} | {_key(p): None for p in pending}
    for _ in range(ASKS):
        trial = study.ask(distributions)
        params = {k: round(v, 6) if isinstance(v, float) else v for k, v in trial.params.items()}
        if _key(params) not in seen:
            return params
        score = seen[_key(params)]
        study.tell(trial, score, state=None if score is not None else optuna.trial.TrialState.FAIL)
    return None


def sample_candidate(
    spec: dict[str, Any],
    model: str,
    task: str,
    trials: list[dict[str, Any]],
    pending: list[dict[str, Any]],
    seed: int,
    higher_is_better: bool,
) -> dict[str, Any]:
    """The explore step's candidate: `spec` with freshly sampled parameters for `model`.

    Publishes a `params` record {"sampled": {...}, "change": {"params": {...}}} (the change
    adds FIXED to the sample) so that the controller records what this step tried and passes
    it back in `trials` next time. Raises SearchExhausted, after publishing {"sampled": None,
    "change": None}, when no untried parameters are left: the step has nothing to test.
    """
    sampled = propose(model, task, trials, pending, seed, higher_is_better)
    if sampled is None:
        publish("params", {"sampled": None, "change": None})
        raise SearchExhausted(f"every sample of {model} parameters was tried already")
    change = {"params": {**sampled, **FIXED.get(model, {})}}
    publish("params", {"sampled": sampled, "change": change})
    return {**spec, **change}


def _key(params: dict[str, Any]) -> str:
    """The same text for the same parameters, also when JSON turned 1.0 into 1."""
    return repr(sorted((k, float(v) if isinstance(v, int | float) else v) for k, v in params.items()))
