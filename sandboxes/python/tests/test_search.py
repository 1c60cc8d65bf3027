"""Optuna TPE sampling in the kernel: reproducible, unique, aware of parallel branches."""

from __future__ import annotations

import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution

from dsassist_kernel import search


def run_trials(model: str, n: int, seed: int = 0) -> list[dict]:
    """n proposals in a row, each scored (a made-up score) and fed back as a trial."""
    trials: list[dict] = []
    for i in range(n):
        params = search.propose(model, "binary", trials, [], seed, True)
        assert params is not None
        trials.append({"params": params, "score": None if i == 2 else 0.7 + 0.01 * (i % 4)})
    return trials


def test_proposals_are_reproducible_and_unique():
    first, again = run_trials("lightgbm", 8), run_trials("lightgbm", 8)
    assert first == again
    keys = {search._key(t["params"]) for t in first}
    assert len(keys) == 8
    assert set(first[0]["params"]) == set(search.space("lightgbm", "binary"))
    floats = [v for t in first for v in t["params"].values() if isinstance(v, float)]
    assert floats and all(v == round(v, 6) for v in floats)
    assert run_trials("lightgbm", 3, seed=1) != first[:3]  # another seed, other samples


def test_pending_parameters_are_taken_and_move_the_seed():
    trials = run_trials("random_forest", 6)
    alone = search.propose("random_forest", "binary", trials, [], 0, True)
    pending = [alone]
    beside = search.propose("random_forest", "binary", trials, pending, 0, True)
    assert beside is not None and beside != alone
    assert search.propose("random_forest", "binary", trials, pending, 0, True) == beside


def test_a_trial_sent_back_through_json_counts_as_its_sample(monkeypatch):
    # JSON writes 1.0 as 1: the trial is still the sample 1.0 of this one-point space
    monkeypatch.setattr(search, "space", lambda model, task: {"C": FloatDistribution(1.0, 1.0)})
    assert search.propose("linear", "binary", [], [], 0, True) == {"C": 1.0}
    assert search.propose("linear", "binary", [{"params": {"C": 1}, "score": 0.8}], [], 0, True) is None


def test_a_small_exhausted_space_gives_none(monkeypatch):
    tiny = {"weights": CategoricalDistribution(["uniform", "distance"])}
    monkeypatch.setattr(search, "space", lambda model, task: tiny)
    trials = [{"params": {"weights": "uniform"}, "score": 0.8}]
    assert search.propose("knn", "binary", trials, [], 0, True) == {"weights": "distance"}
    assert search.propose("knn", "binary", trials, [{"weights": "distance"}], 0, True) is None


def test_models_without_a_space_give_none():
    assert search.space("dummy", "binary") == {}
    assert search.propose("dummy", "binary", [], [], 0, True) is None


def test_sample_candidate_publishes_the_sample_and_the_change(monkeypatch):
    published: list[tuple[str, dict]] = []
    monkeypatch.setattr(search, "publish", lambda kind, record: published.append((kind, record)))
    spec = {"model": "lightgbm", "params": {"n_estimators": 20}, "impute": "median"}
    candidate = search.sample_candidate(spec, "lightgbm", "regression", [], [], 3, False)
    sampled = search.propose("lightgbm", "regression", [], [], 3, False)
    assert candidate == {**spec, "params": {**sampled, "subsample_freq": 1}}
    assert published == [("params", {"sampled": sampled, "change": {"params": candidate["params"]}})]


def test_sample_candidate_says_when_nothing_is_left(monkeypatch):
    published: list[tuple[str, dict]] = []
    monkeypatch.setattr(search, "publish", lambda kind, record: published.append((kind, record)))
    with pytest.raises(search.SearchExhausted, match="every sample of dummy parameters was tried"):
        search.sample_candidate({"model": "dummy"}, "dummy", "binary", [], [], 0, True)
    assert published == [("params", {"sampled": None, "change": None})]
