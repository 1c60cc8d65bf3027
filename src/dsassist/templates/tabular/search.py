"""Bayesian parameter sampling (Optuna TPE) for the best pipeline of a model family.

The planner is stateless: each proposal rebuilds the study from the trials recorded as
steps, with a seed that moves on with every trial, so runs are reproducible and resumable.
"""

from __future__ import annotations

from typing import Any

from dsassist.messages import RunView

FIXED = {"lightgbm": {"subsample_freq": 1}}  # set with every sample so that subsample takes effect


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


def propose(run: RunView, model: str, seed: int, template_id: str) -> dict[str, Any] | None:
    """The next parameters to try for `model`, given every earlier trial of this template."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions = space(model, run.task)
    if not distributions:
        return None
    trials = [s for s in run.steps if s.template_id == template_id and s.params.get("model") == model]
    # trials running on parallel branches: their parameters are taken, their scores unknown
    running = [t for t in run.running if t.template_id == template_id and t.params.get("model") == model]
    higher = next((s.metrics.higher_is_better for s in run.steps if s.metrics), True)
    sampler = optuna.samplers.TPESampler(seed=seed + len(trials) + len(running), n_startup_trials=5)
    study = optuna.create_study(direction="maximize" if higher else "minimize", sampler=sampler)
    for s in trials:
        state = optuna.trial.TrialState.COMPLETE if s.metrics else optuna.trial.TrialState.FAIL
        value = s.metrics.mean if s.metrics else None
        study.add_trial(
            optuna.trial.create_trial(
                state=state, value=value, params=s.params["sampled"], distributions=distributions
            )
        )
    seen = {_key(s.params["sampled"]): s.metrics.mean if s.metrics else None for s in trials}
    seen |= {_key(t.params["sampled"]): None for t in running}
    for _ in range(20):  # small discrete spaces repeat themselves: ask again, up to a point
        trial = study.ask(distributions)
        params = {k: round(v, 6) if isinstance(v, float) else v for k, v in trial.params.items()}
        if _key(params) not in seen:
            return params
        study.tell(
            trial,
            seen[_key(params)],
            state=None if seen[_key(params)] is not None else optuna.trial.TrialState.FAIL,
        )
    return None  # the space is exhausted


def _key(params: dict[str, Any]) -> str:
    return repr(sorted(params.items()))
