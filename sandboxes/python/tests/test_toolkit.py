"""What the experiment cells call in the kernel: profiling, folds, pipelines, scoring."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dsassist_kernel import toolkit

N = 200


def features(n: int = N, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """Realistic columns, plus one of each kind of suspect."""
    rng = np.random.default_rng(seed)
    color = rng.choice(["red", "green", "blue"], n)
    age = rng.normal(40, 10, n).round(1)
    income = rng.lognormal(10, 1, n)
    y = pd.Series((age + rng.normal(0, 8, n) > 40).astype(int), name="churned")
    X = pd.DataFrame(
        {
            "customer_id": np.arange(1000, 1000 + n),  # identifier
            "plan": ["basic"] * n,  # constant
            "age": age,
            "color": color,
            "color_code": pd.Series(color).map({"red": 1, "green": 2, "blue": 3}),  # relabelling
            "churned_copy": y.map({0: "stayed", 1: "left"}),  # the target itself: a leak
            "income": income,
        }
    )
    return X, y


# ---- profiling ------------------------------------------------------------------------


def test_profile_flags_identifier_constant_leak_and_duplicate():
    X, y = features()
    profile = toolkit.profile_data(X, y, "binary")
    suspicious = profile["suspicious"]
    assert set(suspicious) == {"customer_id", "plan", "churned_copy", "color_code"}
    assert suspicious["customer_id"].startswith("identifier")
    assert suspicious["plan"].startswith("constant")
    assert suspicious["churned_copy"].startswith("leak")
    assert suspicious["color_code"].startswith("duplicate") and "'color'" in suspicious["color_code"]
    assert profile["rows"] == N
    assert profile["target"]["classes"] == {str(k): int(v) for k, v in y.value_counts().items()}
    kinds = {c: info["kind"] for c, info in profile["columns"].items()}
    assert kinds["age"] == kinds["income"] == "numeric"
    assert kinds["color"] == "categorical"
    assert profile["columns"]["income"]["skew"] > 1  # lognormal


def test_profile_flags_a_regression_leak_and_keeps_honest_columns():
    X, _ = features()
    rng = np.random.default_rng(1)
    y = pd.Series(3 * X["age"] + rng.normal(0, 5, N), name="spend")
    X = X.drop(columns=["churned_copy"]).assign(spend_in_cents=y * 100 + 3)
    profile = toolkit.profile_data(X, y, "regression")
    suspicious = profile["suspicious"]
    assert suspicious["spend_in_cents"].startswith("leak")
    assert "age" not in suspicious and "income" not in suspicious and "color" not in suspicious
    assert set(profile["target"]) >= {"mean", "std", "min", "max", "skew"}


def test_profile_flags_text_identifier():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"ref": [f"A{i:05d}" for i in range(N)], "x": rng.normal(size=N)})
    y = pd.Series(rng.integers(0, 2, N))
    assert set(toolkit.profile_data(X, y, "binary")["suspicious"]) == {"ref"}


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        (np.random.default_rng(0).normal(size=60), "numeric"),
        ([1, 2, 3, 2, 1] * 12, "numeric"),
        (["red", "green", "blue"] * 20, "categorical"),
        ([True, False] * 30, "categorical"),
        (pd.date_range("2021-01-01", periods=60, freq="D"), "datetime"),
        ([f"2021-03-{d % 28 + 1:02d}" for d in range(60)], "datetime"),
        (
            ["the parcel arrived late and damaged", "great service, will order again", "ok"] * 20,
            "text",
        ),
        (["same"] * 60, "constant"),
    ],
    ids=["float", "small-int", "strings", "bool", "datetime64", "date-strings", "free-text", "constant"],
)
def test_column_kind(values, kind):
    assert toolkit.column_kind(pd.Series(values, name="col")) == kind


# ---- folds ----------------------------------------------------------------------------


def assert_partition(folds, n):
    valid = np.concatenate([v for _, v in folds])
    assert sorted(valid.tolist()) == list(range(n))
    for train, valid in folds:
        assert not set(train) & set(valid)


def test_stratified_folds_keep_class_balance_and_are_fixed_by_seed():
    X, y = features()
    folds = toolkit.make_folds(X, y, "binary", "stratified", n_splits=5, seed=3)
    assert len(folds) == 5
    assert_partition(folds, N)
    share = y.mean()
    for _, valid in folds:
        assert abs(y.iloc[valid].mean() - share) < 0.03
    again = toolkit.make_folds(X, y, "binary", "stratified", n_splits=5, seed=3)
    assert all((a[1] == b[1]).all() for a, b in zip(folds, again, strict=True))
    other = toolkit.make_folds(X, y, "binary", "stratified", n_splits=5, seed=4)
    assert any((a[1] != b[1]).any() for a, b in zip(folds, other, strict=True))


def test_kfold_partitions_rows():
    X, y = features()
    folds = toolkit.make_folds(X, y.astype(float), "regression", "kfold", n_splits=4, seed=0)
    assert len(folds) == 4
    assert_partition(folds, N)
    assert not (np.diff(np.concatenate([v for _, v in folds])) == 1).all()  # shuffled


def test_group_folds_never_split_a_group():
    X, y = features()
    X = X.assign(household=np.random.default_rng(5).integers(0, 40, N))
    folds = toolkit.make_folds(X, y, "binary", "group", n_splits=5, column="household")
    assert len(folds) == 5
    assert_partition(folds, N)
    for train, valid in folds:
        assert not set(X["household"].iloc[train]) & set(X["household"].iloc[valid])


def test_time_folds_validate_on_later_rows_only():
    rng = np.random.default_rng(2)
    days = pd.date_range("2022-01-01", periods=N, freq="D")
    shuffled = rng.permutation(N)
    X = pd.DataFrame({"when": days[shuffled].strftime("%Y-%m-%d"), "x": rng.normal(size=N)})
    y = pd.Series(rng.normal(size=N))
    folds = toolkit.make_folds(X, y, "regression", "time", n_splits=4, column="when")
    assert len(folds) == 4
    when = pd.to_datetime(X["when"])
    for train, valid in folds:
        assert len(train) and len(valid)
        assert not set(train) & set(valid)
        assert when.iloc[train].max() < when.iloc[valid].min()
    # the validation windows move forward and cover the latest rows
    starts = [when.iloc[valid].min() for _, valid in folds]
    assert starts == sorted(starts)
    assert when.iloc[folds[-1][1]].max() == days[-1]


# ---- pipelines and scoring ------------------------------------------------------------


def classification() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(7)
    n = 150
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    group = rng.choice(["a", "b", "c"], n)
    logit = 2.5 * x1 - 1.5 * x2 + (group == "a") * 1.0
    y = pd.Series(np.where(logit + rng.normal(0, 0.5, n) > 0, "yes", "no"), name="y")
    x1 = np.where(rng.random(n) < 0.1, np.nan, x1)  # some gaps
    return pd.DataFrame({"x1": x1, "x2": x2, "group": group}), y


def regression() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(8)
    n = 150
    x1, x2 = rng.normal(size=n), rng.uniform(0, 10, n)
    group = rng.choice(["a", "b"], n)
    y = pd.Series(3 * x1 + x2 + (group == "b") * 2 + rng.normal(0, 0.5, n), name="y")
    return pd.DataFrame({"x1": x1, "x2": x2, "group": group}), y


COLUMNS = {"numeric": ["x1", "x2"], "categorical": ["group"], "datetime": [], "text": []}


def score(spec, X, y, task, metric, scheme):
    folds = toolkit.make_folds(X, y, task, scheme, n_splits=3, seed=0)
    return toolkit.evaluate(toolkit.build_pipeline(spec, COLUMNS, task, 0), X, y, folds, metric, task)


def check_record(record, metric, higher, secondary):
    assert record["metric"] == metric
    assert record["higher_is_better"] is higher
    assert len(record["folds"]) == 3
    assert record["mean"] == pytest.approx(np.mean(record["folds"]), abs=1e-5)
    assert record["std"] == pytest.approx(np.std(record["folds"]), abs=1e-5)
    assert set(record["secondary"]) == set(secondary)
    assert record["fit_time_s"] >= 0


def test_classification_pipeline_is_scored_on_the_folds(capsys):
    X, y = classification()
    dummy = score({"model": "dummy"}, X, y, "binary", "roc_auc", "stratified")
    linear = score({"model": "linear"}, X, y, "binary", "roc_auc", "stratified")
    for record in (dummy, linear):
        check_record(record, "roc_auc", True, ["accuracy", "log_loss"])
    assert dummy["folds"] == [0.5, 0.5, 0.5]
    assert linear["mean"] > 0.85
    assert linear["secondary"]["log_loss"] > 0  # a loss, reported as a positive number
    assert "roc_auc: " in capsys.readouterr().out  # the summary line


def test_regression_pipeline_reports_rmse_as_lower_is_better():
    X, y = regression()
    dummy = score({"model": "dummy"}, X, y, "regression", "rmse", "kfold")
    linear = score({"model": "linear"}, X, y, "regression", "rmse", "kfold")
    for record in (dummy, linear):
        check_record(record, "rmse", False, ["r2", "mae"])
        assert all(f > 0 for f in record["folds"])
        assert record["secondary"]["mae"] > 0
    assert linear["mean"] < 0.5 * dummy["mean"]
    assert linear["secondary"]["r2"] > 0.8


def test_multiclass_accuracy():
    X, _ = classification()
    y = pd.Series(np.select([X["x2"] < -0.5, X["x2"] > 0.5], ["low", "high"], "mid"))
    record = score({"model": "linear"}, X, y, "multiclass", "accuracy", "stratified")
    check_record(record, "accuracy", True, ["log_loss", "balanced_accuracy"])
    assert record["mean"] > 0.7


def test_evaluate_publishes_nothing_outside_ipython(capsys):
    X, y = classification()
    score({"model": "dummy"}, X, y, "binary", "roc_auc", "stratified")
    out = capsys.readouterr().out
    assert "application/vnd.dsassist" not in out
    assert out.strip().startswith("roc_auc: ")


@pytest.mark.parametrize(
    ("spec", "task"),
    [
        (
            {
                "model": "linear",
                "missing_indicators": True,
                "categorical": "ordinal",
                "log_features": ["income"],
                "date_parts": True,
                "text": True,
            },
            "binary",
        ),
        ({"model": "random_forest", "params": {"n_estimators": 20}, "categorical": "target"}, "binary"),
        ({"model": "lightgbm", "params": {"n_estimators": 20}, "log_target": True}, "regression"),
    ],
    ids=["linear-every-feature", "forest-target-encoding", "lightgbm-log-target"],
)
def test_build_pipeline_with_feature_options_fits_and_predicts(spec, task):
    rng = np.random.default_rng(3)
    n = 120
    X = pd.DataFrame(
        {
            "age": np.where(rng.random(n) < 0.2, np.nan, rng.normal(40, 10, n)),
            "income": rng.lognormal(10, 1, n),
            "city": rng.choice(["oslo", "rome", "lima", "kyiv"], n),
            "joined": pd.date_range("2020-01-01", periods=n, freq="37h").astype(str),
            "review": rng.choice(["fast friendly service", "slow and rude staff", "fine overall"], n),
        }
    )
    columns = {
        "numeric": ["age", "income"],
        "categorical": ["city"],
        "datetime": ["joined"],
        "text": ["review"],
    }
    labels, amounts = rng.integers(0, 2, n), np.exp(rng.normal(2, 0.5, n))
    y = pd.Series(labels if task == "binary" else amounts)
    model = toolkit.build_pipeline(spec, columns, task, seed=0).fit(X, y)
    predictions = model.predict(X)
    assert len(predictions) == n
    if task == "regression":
        assert (predictions > 0).all()  # back on the original scale after log1p/expm1


def test_recheck_scores_candidate_and_parent_on_new_folds():
    X, y = classification()
    validation = {"scheme": "stratified", "n_splits": 3, "column": None}
    first = score({"model": "linear"}, X, y, "binary", "roc_auc", "stratified")
    record = toolkit.recheck(
        {"model": "linear"}, {"model": "dummy"}, COLUMNS, X, y, validation, "roc_auc", "binary", 0
    )
    assert len(record["candidate"]) == len(record["parent"]) == 3
    assert record["parent"] == [0.5, 0.5, 0.5]
    assert record["candidate"] != first["folds"]  # other folds, not the first verdict again
    assert np.mean(record["candidate"]) > 0.85


def test_recheck_draws_no_new_folds_for_time_ordered_validation():
    X, y = regression()
    validation = {"scheme": "time", "n_splits": 3, "column": "x2"}
    record = toolkit.recheck(
        {"model": "linear"}, {"model": "dummy"}, COLUMNS, X, y, validation, "rmse", "regression", 0
    )
    assert record["candidate"] == record["parent"] == []
    assert "time" in record["why"]


def test_folds_run_two_at_a_time_only_for_single_core_models_on_big_tables(monkeypatch):
    X, y = classification()
    monkeypatch.setattr(toolkit.os, "cpu_count", lambda: 2)
    lightgbm = toolkit.build_pipeline({"model": "lightgbm"}, COLUMNS, "binary", 0)
    forest = toolkit.build_pipeline({"model": "random_forest"}, COLUMNS, "binary", 0)
    assert toolkit.fold_jobs(lightgbm, X) is None  # 150 rows: workers would cost more than they save
    monkeypatch.setattr(toolkit, "PARALLEL_FOLDS_MIN_ROWS", 100)
    assert toolkit.fold_jobs(lightgbm, X) == 2
    assert toolkit.fold_jobs(forest, X) is None  # it already uses both cores
    for cheap in ("dummy", "linear", "knn"):  # they fit faster than the workers start
        assert toolkit.fold_jobs(toolkit.build_pipeline({"model": cheap}, COLUMNS, "binary", 0), X) is None
    logged = toolkit.build_pipeline({"model": "linear", "log_target": True}, COLUMNS, "regression", 0)
    assert toolkit.fold_jobs(logged, X) is None
    parallel = score({"model": "lightgbm"}, X, y, "binary", "roc_auc", "stratified")
    monkeypatch.setattr(toolkit, "PARALLEL_FOLDS_MIN_ROWS", 10**9)
    assert score({"model": "lightgbm"}, X, y, "binary", "roc_auc", "stratified")["folds"] == parallel["folds"]


def test_json_numbers_reach_the_models_as_floats():
    # JSON writes 1.0 as 1; for sklearn max_features=1 would be ONE feature, not all of them
    X = pd.DataFrame(np.random.default_rng(0).normal(size=(80, 4)), columns=list("abcd"))
    y = (X["a"] > 0).astype(int)
    params = {"max_features": 1, "n_estimators": 3, "bootstrap": True}
    forest = toolkit.make_model("random_forest", "binary", params).fit(X, y)
    assert forest.max_features == 1.0 and isinstance(forest.max_features, float)
    assert all(tree.max_features_ == 4 for tree in forest.estimators_)
    assert isinstance(forest.n_estimators, int) and forest.bootstrap is True
    assert toolkit.make_model("random_forest", "binary", {"max_features": "sqrt"}).max_features == "sqrt"
    boosted = toolkit.make_model("lightgbm", "regression", {"learning_rate": 1, "subsample": 1, "reg_alpha": 0})
    assert all(isinstance(boosted.get_params()[k], float) for k in ("learning_rate", "subsample", "reg_alpha"))
    assert isinstance(toolkit.make_model("linear", "binary", {"C": 2}).C, float)
    assert isinstance(toolkit.make_model("linear", "regression", {"alpha": 3}).alpha, float)


def test_drivers_explain_on_a_sample_of_big_folds_and_rank_the_signal_first():
    rng = np.random.default_rng(0)
    n = 6000
    X = pd.DataFrame({"signal": rng.normal(size=n), "noise": rng.normal(size=n)})
    y = pd.Series((X["signal"] + 0.1 * rng.normal(size=n) > 0).astype(int))
    profile = toolkit.profile_data(X, y, "binary")
    columns = toolkit.feature_columns(profile, {})
    folds = toolkit.make_folds(X, y, "binary", "stratified", 5, seed=0)
    spec = {**toolkit.BASE_SPEC, "model": "linear"}
    pipeline = toolkit.build_pipeline(spec, columns, "binary", 0)
    table = toolkit.drivers(pipeline, columns, X, y, folds, "roc_auc", "binary")
    assert list(table.index) == ["signal", "noise"]
    assert table.loc["signal", "importance"] > 0.1 > abs(table.loc["noise", "importance"])
