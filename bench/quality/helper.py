"""The Python side of bench/quality.ts, run in the bench's own venv (bench/requirements.txt).

Every system's predictions go through one file format, the one `dsassist predict` writes:
a `prediction` column and, for classification, one `proba_<class>` column per class. So the
baselines write it too, and one scorer reads them all.

    helper.py versions
    helper.py split DATA TARGET TASK DIR      -> DIR/train.csv (with the target), DIR/test.csv
                                                 (without it), DIR/truth.csv; prints the split's facts
    helper.py baseline flaml|lightgbm DIR TASK TARGET BUDGET DROP OUT
                                              -> OUT predictions; prints the fit+predict wall time
    helper.py score DIR TASK TARGET PREDICTIONS -> prints the test scores

Each command prints one JSON object on stdout; a failure exits non-zero with its traceback.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# the toolkit DSAssist's kernels use, for the same table reader and the same leak check
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "sandboxes" / "python"))
from dsassist_kernel.toolkit import load_table, profile_data  # noqa: E402

TEST_SIZE = 0.2
SEED = 0
FLAML_JOBS = 2
FLAML_METRIC = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}


def versions() -> dict[str, Any]:
    import flaml
    import lightgbm
    import sklearn

    return {
        "python": sys.version.split()[0],
        "flaml": flaml.__version__,
        "lightgbm": lightgbm.__version__,
        "scikit-learn": sklearn.__version__,
    }


def split(data: str, target: str, task: str, folder: str) -> dict[str, Any]:
    """The 80/20 split (seed 0, stratified for classification) and the columns the profile flags as leaks."""
    from sklearn.model_selection import train_test_split

    out = Path(folder)
    df = load_table(data)
    df = df[df[target].notna()].reset_index(drop=True)
    X, y = df.drop(columns=[target]), df[target]
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=TEST_SIZE, random_state=SEED, stratify=None if task == "regression" else y
    )
    X_train.assign(**{target: y_train}).to_csv(out / "train.csv", index=False)
    X_test.to_csv(out / "test.csv", index=False)
    y_test.to_frame().to_csv(out / "truth.csv", index=False)
    suspicious = profile_data(X_train, y_train, task)["suspicious"]
    return {
        "train_rows": len(X_train),
        "test_rows": len(X_test),
        "features": X_train.shape[1],
        "leaks": {c: why for c, why in suspicious.items() if why.startswith("leak")},
    }


def labels_of(folder: Path, target: str) -> list[str]:
    """The class labels of the training rows, sorted, as strings (the `proba_<class>` names)."""
    return [str(c) for c in sorted(load_table(str(folder / "train.csv"))[target].unique())]


def as_categories(train: pd.DataFrame, test: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """String columns as pandas categories, with the training rows' categories on both sides."""
    train, test = train.copy(), test.copy()
    for col in train.columns:
        if pd.api.types.is_object_dtype(train[col]) or pd.api.types.is_string_dtype(train[col]):
            dtype = pd.CategoricalDtype(train[col].dropna().unique())
            train[col], test[col] = train[col].astype(dtype), test[col].astype(dtype)
    return train, test


def fit_flaml(task: str, X: pd.DataFrame, y: pd.Series, budget: float) -> tuple[Any, str]:
    from flaml import AutoML

    automl = AutoML()
    automl.fit(
        X,
        y,
        task="regression" if task == "regression" else "classification",
        time_budget=budget,
        metric=FLAML_METRIC[task],
        seed=SEED,
        n_jobs=FLAML_JOBS,
        verbose=0,
    )
    return automl, str(automl.best_estimator)


def fit_lightgbm(task: str, X: pd.DataFrame, y: pd.Series, _budget: float) -> tuple[Any, str]:
    from lightgbm import LGBMClassifier, LGBMRegressor

    model = LGBMRegressor(verbose=-1) if task == "regression" else LGBMClassifier(verbose=-1)
    return model.fit(X, y), "lgbm (defaults)"


FITTERS = {"flaml": fit_flaml, "lightgbm": fit_lightgbm}


def baseline(system: str, folder: str, task: str, target: str, budget: str, drop: str, out: str) -> dict[str, Any]:
    """Fit one baseline on the training rows (less the `drop` columns) and write its test predictions."""
    where = Path(folder)
    train, test = load_table(str(where / "train.csv")), load_table(str(where / "test.csv"))
    columns = [c for c in test.columns if c not in set(filter(None, drop.split(",")))]
    X_train, X_test = as_categories(train[columns], test[columns])
    start = time.perf_counter()
    model, name = FITTERS[system](task, X_train, train[target], float(budget))
    frame = pd.DataFrame({"prediction": np.asarray(model.predict(X_test))})
    if task != "regression":
        proba = model.predict_proba(X_test)
        for i, label in enumerate(model.classes_):
            frame[f"proba_{label}"] = proba[:, i]
    wall = time.perf_counter() - start
    frame.to_csv(out, index=False)
    return {"wall_s": wall, "model": name}


def score(folder: str, task: str, target: str, predictions: str) -> dict[str, float]:
    """ROC AUC for binary targets, accuracy and log-loss for multiclass, RMSE for regression."""
    from sklearn.metrics import accuracy_score, log_loss, mean_squared_error, roc_auc_score

    where = Path(folder)
    truth = load_table(str(where / "truth.csv"))[target]
    pred = load_table(predictions)
    if len(pred) != len(truth):
        raise ValueError(f"{len(pred)} predictions for {len(truth)} test rows")
    if task == "regression":
        return {"rmse": float(np.sqrt(mean_squared_error(truth, pred["prediction"].astype(float))))}
    labels = labels_of(where, target)
    missing = [label for label in labels if f"proba_{label}" not in pred.columns]
    if missing:
        raise ValueError(f"no probability column for classes {missing} (columns: {list(pred.columns)})")
    proba = pred[[f"proba_{label}" for label in labels]].to_numpy(float)
    y = truth.astype(str).to_numpy()
    if task == "binary":
        return {"roc_auc": float(roc_auc_score(y == labels[-1], proba[:, -1]))}
    return {
        "accuracy": float(accuracy_score(y, pred["prediction"].astype(str))),
        "log_loss": float(log_loss(y, proba, labels=labels)),
    }


COMMANDS = {"versions": versions, "split": split, "baseline": baseline, "score": score}


def main() -> None:
    for category in (FutureWarning, DeprecationWarning, UserWarning):
        warnings.filterwarnings("ignore", category=category)
    command, *args = sys.argv[1:]
    print(json.dumps(COMMANDS[command](*args)))


if __name__ == "__main__":
    main()
