"""Leak suspects: a column far ahead of every other on held-out folds, a name that reads as
known only after the outcome, and the user's --keep, on synthetic tables and on titanic."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dsassist_kernel import toolkit

TITANIC = Path(__file__).resolve().parents[3] / "examples" / "titanic.csv"


def customers(n: int = 1000, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """Ordinary columns, each a modest predictor of churn."""
    rng = np.random.default_rng(seed)
    tenure = rng.gamma(2, 12, n).round()
    spend = rng.lognormal(4, 0.6, n)
    plan = rng.choice(["basic", "plus", "pro"], n, p=[0.5, 0.3, 0.2])
    logit = -0.06 * (tenure - 24) + 0.4 * (plan == "basic") + 0.3 * np.log(spend / 55)
    y = pd.Series((logit + rng.logistic(0, 1, n) > 0).astype(int), name="churned")
    X = pd.DataFrame({"tenure": tenure, "spend": spend, "plan": plan, "region": rng.choice(list("nsew"), n)})
    return X, y


def flipped(y: pd.Series, share: float, seed: int = 1) -> pd.Series:
    """The target with a share of its labels flipped: a leak that no longer matches exactly."""
    flip = np.random.default_rng(seed).random(len(y)) < share
    return pd.Series(np.where(flip, 1 - y, y), index=y.index)


def test_a_noisy_copy_of_the_target_is_flagged_with_its_evidence():
    X, y = customers()
    X["account_review"] = flipped(y, 0.03).map({0: "ok", 1: "flagged"})
    profile = toolkit.profile_data(X, y, "binary")
    why = profile["suspicious"]["account_review"]
    assert why.startswith("leak: alone it predicts the target far better than any other column")
    assert "held-out accuracy 0.9" in why and "for the next best, 'tenure'" in why and "majority" in why
    assert profile["columns"]["account_review"]["alone"] < 0.99  # the in-sample rule misses it
    assert set(profile["suspicious"]) == {"account_review"}


def test_a_noisy_copy_of_a_regression_target_is_flagged():
    rng = np.random.default_rng(4)
    n = 1500
    size = rng.uniform(30, 200, n)
    rooms = rng.integers(1, 6, n)
    price = pd.Series(2000 * size + 20000 * rooms + rng.normal(0, 120000, n), name="price")
    X = pd.DataFrame({"size": size, "rooms": rooms, "assessed": price + rng.normal(0, 30000, n)})
    profile = toolkit.profile_data(X, price, "regression")
    assert profile["columns"]["assessed"]["alone"] < 0.99
    assert set(profile["suspicious"]) == {"assessed"}
    assert "held-out R² 0.9" in profile["suspicious"]["assessed"]


def test_ordinary_strong_predictors_are_not_flagged():
    X, y = customers()
    X["tenure_months"] = X["tenure"] + np.random.default_rng(2).normal(0, 1, len(X))  # a near twin
    profile = toolkit.profile_data(X, y, "binary")
    assert profile["suspicious"] == {}
    assert all(0 <= info["held_out"] <= 1 for info in profile["columns"].values())


def test_the_rule_needs_another_column_to_compare_with():
    X, y = customers()
    only = pd.DataFrame({"account_review": flipped(y, 0.03)})
    assert toolkit.profile_data(only, y, "binary")["suspicious"] == {}
    assert toolkit.held_out_leak({"a": (0.99, 0.5), "b": (0.70, 0.5)}, "accuracy") != {}
    assert toolkit.held_out_leak({"a": (0.99, 0.5), "b": (0.76, 0.5)}, "accuracy") == {}  # b closes half


@pytest.fixture(scope="module")
def titanic() -> tuple[pd.DataFrame, pd.Series]:
    df = pd.read_csv(TITANIC)
    return df.drop(columns=["survived"]), df["survived"]


def test_titanic_flags_alive_and_relabellings_but_no_ordinary_predictor(titanic):
    X, y = titanic
    profile = toolkit.profile_data(X, y, "binary")
    suspicious = profile["suspicious"]
    assert suspicious["alive"].startswith("leak")  # "yes"/"no": survived relabelled
    assert suspicious["class"] == "duplicate: a relabelling of 'pclass'"
    assert suspicious["embark_town"] == "duplicate: a relabelling of 'embarked'"
    assert set(suspicious) == {"alive", "class", "embark_town"}
    # who (man/woman/child) and adult_male are near copies of sex, not relabellings of it:
    # they stay features, and as strong predictors that agree they keep each other unflagged
    held_out = {c: profile["columns"][c]["held_out"] for c in ("sex", "who", "adult_male")}
    assert all(0.75 < v < 0.82 for v in held_out.values())


def test_titanic_with_a_noisy_alive_flags_it_alone(titanic):
    X, y = titanic
    X = X.assign(alive=flipped(y, 0.02).map({0: "no", 1: "yes"}))
    suspicious = toolkit.profile_data(X, y, "binary")["suspicious"]
    assert "far better than any other column" in suspicious["alive"]
    assert not {"sex", "fare", "pclass", "who", "adult_male"} & set(suspicious)


def test_kept_columns_are_never_flagged(titanic):
    X, y = titanic
    kept = toolkit.profile_data(X, y, "binary", keep=["alive", "class"])
    assert set(kept["suspicious"]) == {"embark_town"}  # and nothing takes alive's place
    assert kept["columns"]["alive"]["held_out"] == 1.0  # still profiled


def test_keep_silences_every_rule():
    X, y = customers(300)
    X = X.assign(
        customer_id=np.arange(len(X)),
        source=["web"] * len(X),
        plan_code=X["plan"].map({"basic": 1, "plus": 2, "pro": 3}),
        churned_copy=y.map({0: "stayed", 1: "left"}),
        refund_amount=np.random.default_rng(0).exponential(10, len(X)),
    )
    suspects = {"customer_id", "source", "plan_code", "churned_copy", "refund_amount"}
    assert set(toolkit.profile_data(X, y, "binary")["suspicious"]) == suspects
    assert toolkit.profile_data(X, y, "binary", keep=suspects)["suspicious"] == {}


def test_keeping_a_total_of_the_target_flags_its_partner_instead():
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"age": rng.normal(40, 10, 200), "fees": rng.uniform(0, 10, 200)})
    y = pd.Series(3 * X["age"] + rng.normal(0, 5, 200))
    X["total"] = y + X["fees"]  # the target plus another column
    assert set(toolkit.profile_data(X, y, "regression")["suspicious"]) == {"total"}
    # with total trusted, total - fees still reads the target back: fees is the one to drop
    kept = toolkit.profile_data(X, y, "regression", keep=["total"])["suspicious"]
    assert kept == {"fees": "leak: the target and other columns reproduce it (R² 1.0000)"}
    assert toolkit.profile_data(X, y, "regression", keep=["total", "fees"])["suspicious"] == {}


@pytest.mark.parametrize(
    "name",
    [
        "outcome",
        "outcome_type",
        "refund_amount",
        "is_refunded",
        "chargeback",
        "churn_date",
        "resolution_date",
        "resolved_at",
        "date_of_death",
        "CancellationReason",
        "DischargeDate",
        "discharge_disposition",
        "days_to_churn",
        "time_to_event",
        "hours_until_resolution",
        "status_after",
        "final_result",
    ],
)
def test_names_known_only_after_the_outcome(name):
    assert toolkit.after_outcome(name) is not None


@pytest.mark.parametrize(
    "name",
    [
        "marital_status",
        "employment_status",
        "test_result",
        "days_to_expiry",
        "time_to_market",
        "screen_resolution",
        "poutcome",  # bank marketing: the previous campaign's outcome
        "previous_outcome",
        "num_refunds",
        "last_refund_date",
        "prior_default",
        "default_rate",
        "closed_accounts",
        "event_date",
        "purchase_date",
        "discharge",  # a river's flow, a battery's current
        "discharge_time",
        "on_time",
        *["pclass", "sex", "age", "fare", "embarked", "who", "adult_male", "deck", "alone"],
    ],
)
def test_ordinary_names_are_not_read_as_after_the_outcome(name):
    assert toolkit.after_outcome(name) is None


def test_a_name_suspect_carries_its_reason_and_score():
    X, y = customers(400)
    X["churn_date"] = pd.Series(pd.date_range("2023-01-01", periods=len(X), freq="D")).where(y == 1)
    why = toolkit.profile_data(X, y, "binary")["suspicious"]["churn_date"]
    assert why.startswith("possible leak: known only after the outcome? (its name reads as the date")
    assert "held-out accuracy" in why


def test_held_out_check_stays_fast_on_a_wide_table():
    rng = np.random.default_rng(0)
    n = 20_000
    X = pd.DataFrame({f"x{i}": rng.normal(size=n) for i in range(40)})
    X = X.assign(**{f"c{i}": rng.choice(list("abcdefghij"), n) for i in range(10)})
    y = pd.Series((X["x0"] + rng.normal(size=n) > 0).astype(int))
    start = time.perf_counter()
    scores = toolkit.held_out_scores(X, y, "binary")
    assert time.perf_counter() - start < 2  # about 0.2 s here: 5,000 rows, 3 folds
    assert max(scores, key=lambda c: scores[c][0]) == "x0"
