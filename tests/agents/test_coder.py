"""The coder through its message interface: CodeRequest / FixRequest in, Cell out."""

from __future__ import annotations

import ast

import pandas as pd
import pytest

from dsassist.agents import Coder
from dsassist.messages import (
    Cell,
    CodeRequest,
    ErrorInfo,
    Execution,
    FixRequest,
    KernelState,
    Task,
    Variable,
)
from dsassist.templates.base import Template
from dsassist.templates.tabular.library import TEMPLATES

ECHO = Template(
    id="echo",
    kind="feature",
    hypothesis="Echo {label}",
    code="\nvalue = $value\nlabel = $label\nnothing = $nothing\n",
    applies=lambda run: [],
)


@pytest.fixture(scope="module")
def coder() -> Coder:
    return Coder([*TEMPLATES, ECHO])


def task(template_id="linear", kind="model", params=None, hypothesis="a hypothesis") -> Task:
    return Task(template_id=template_id, kind=kind, hypothesis=hypothesis, params=params or {})


def state(**frames: list[str]) -> KernelState:
    """A kernel state holding data frames with the given columns, plus a few other names."""
    variables = [
        Variable(name=name, type="DataFrame", shape=f"(10, {len(cols)})", columns=cols)
        for name, cols in frames.items()
    ]
    variables += [
        Variable(name="train_frame", type="DataFrame", shape="(3, 1)", columns=["score"]),
        Variable(name="threshold", type="float", detail="= 0.5"),
    ]
    return KernelState(variables=variables, modules=["np", "pd"])


def failure(code: str, namespace: dict) -> ErrorInfo:
    """The error that `code` really raises, as the kernel would report it."""
    try:
        exec(code, namespace)
    except Exception as exc:
        return ErrorInfo(name=type(exc).__name__, value=str(exc), traceback=[f"----> 1 {code}"])
    raise AssertionError(f"expected {code!r} to fail")


def fix(coder: Coder, code: str, error: ErrorInfo, st: KernelState | None = None) -> Cell:
    request = FixRequest(
        task=task(),
        code=code,
        execution=Execution(ok=False, error=error),
        feedback=f"{error.name}: {error.value}",
        attempt=1,
        state=st or state(),
    )
    cell = coder.handle(request)
    assert isinstance(cell, Cell)
    return cell


# ---- rendering ------------------------------------------------------------------------


def test_render_fills_params_as_python_literals(coder):
    params = {"value": {"a": [1, 2.5, None, True], "b": "it's"}, "label": 'say "hi"', "nothing": None}
    cell = coder.handle(CodeRequest(task=task("echo", "feature", params, "Echo it"), state=state()))
    assert isinstance(cell, Cell) and not cell.gave_up
    assert cell.code.startswith("# Echo it\n")
    namespace: dict = {}
    exec(cell.code, namespace)
    assert namespace["value"] == params["value"]
    assert namespace["label"] == params["label"]
    assert namespace["nothing"] is None


def test_render_setup_template(coder):
    params = {"seed": 7, "task": "binary", "metric": "roc_auc", "target": "survived", "path": "d/t.csv"}
    code = coder.handle(CodeRequest(task=task("setup", "setup", params), state=KernelState())).code
    ast.parse(code)
    assert "SEED, TASK, METRIC, TARGET = 7, 'binary', 'roc_auc', 'survived'" in code
    assert "load_table('d/t.csv')" in code
    assert "$" not in code


def test_render_judged_template_merges_the_change_into_spec(coder):
    change = {"model": "random_forest", "params": {"min_samples_leaf": 3}}
    code = coder.handle(CodeRequest(task=task("tune", "tuning", {"change": change}), state=state())).code
    tree = ast.parse(code)
    first = tree.body[0]
    assert isinstance(first, ast.Assign) and first.targets[0].id == "candidate_spec"
    namespace = {"spec": {"model": "dummy", "impute": "median"}}
    exec(ast.unparse(ast.Module(body=[first], type_ignores=[])), namespace)
    assert namespace["candidate_spec"] == {**namespace["spec"], **change}
    assert "evaluate(build_pipeline(candidate_spec" in code


def test_render_validation_with_none_column(coder):
    params = {"scheme": "kfold", "n_splits": 5, "column": None, "why": "rows aren't grouped"}
    code = coder.handle(CodeRequest(task=task("validation", "validation", params), state=state())).code
    ast.parse(code)
    assert """VALIDATION = {"scheme": 'kfold', "n_splits": 5, "column": None}""" in code
    assert '"rows aren\'t grouped"' in code


# ---- fixes ----------------------------------------------------------------------------


def test_missing_import_for_sklearn_estimator(coder):
    code = "qt = QuantileTransformer(n_quantiles=10)"
    cell = fix(coder, code, failure(code, {}))
    assert cell.rule == "add-missing-import" and not cell.gave_up
    assert cell.code.splitlines()[0] == "from sklearn.preprocessing import QuantileTransformer"
    assert cell.code.endswith(code)
    namespace: dict = {}
    exec(cell.code, namespace)
    assert type(namespace["qt"]).__name__ == "QuantileTransformer"


def test_missing_import_for_common_alias(coder):
    code = "arr = np.arange(3)"
    cell = fix(coder, code, ErrorInfo(name="NameError", value="name 'np' is not defined"))
    assert cell.rule == "add-missing-import"
    assert cell.code == f"import numpy as np\n{code}"


def test_misspelt_variable_is_renamed_to_the_closest_kernel_variable(coder):
    code = "n = len(trian_frame)\nlabelled = trian_frame.assign(high=trian_frame.score > threshold)"
    namespace = {"train_frame": pd.DataFrame({"score": [0.2, 0.7, 0.9]}), "threshold": 0.5}
    cell = fix(coder, code, failure(code, dict(namespace)))
    assert cell.rule == "rename-to-defined-variable"
    assert "trian_frame" not in cell.code
    assert cell.code.count("train_frame") == 3
    exec(cell.code, namespace)
    assert namespace["n"] == 3
    assert namespace["labelled"]["high"].tolist() == [False, True, True]


def test_misspelt_variable_with_did_you_mean_suffix(coder):
    error = ErrorInfo(name="NameError", value="name 'threshhold' is not defined. Did you mean: 'threshold'?")
    cell = fix(coder, "keep = 0.7 > threshhold", error)
    assert cell.code == "keep = 0.7 > threshold"


def test_unknown_column_is_replaced_by_the_closest_real_column(coder):
    frame = pd.DataFrame({"Age": [22.0, 38.0], "Fare": [7.25, 71.3], "Sex": ["m", "f"]})
    code = "mean_age = passengers['Agee'].mean()"
    st = state(passengers=list(frame.columns))
    cell = fix(coder, code, failure(code, {"passengers": frame}), st)
    assert cell.rule == "use-existing-column"
    assert cell.code == "mean_age = passengers['Age'].mean()"
    namespace = {"passengers": frame}
    exec(cell.code, namespace)
    assert namespace["mean_age"] == 30.0


def test_unknown_column_in_double_quotes(coder):
    st = state(X=["pclass", "fare"])
    cell = fix(coder, 'x = X["Pclass"]', ErrorInfo(name="KeyError", value="'Pclass'"), st)
    assert cell.code == 'x = X["pclass"]'


def test_unknown_column_in_a_list_of_columns(coder):
    frame = pd.DataFrame({"Age": [22.0, 38.0], "Fare": [7.25, 71.3]})
    code = "subset = passengers[['Agee', 'Fare']]"
    cell = fix(coder, code, failure(code, {"passengers": frame}), state(passengers=["Age", "Fare"]))
    assert cell.rule == "use-existing-column"
    assert cell.code == "subset = passengers[['Age', 'Fare']]"


def test_unexpected_keyword_argument_is_dropped(coder):
    code = (
        "from sklearn.linear_model import LogisticRegression\n"
        "model = LogisticRegression(C=0.5, n_estimators=100, max_iter=50)"
    )
    error = failure(code, {})
    assert "n_estimators" in error.value
    cell = fix(coder, code, error)
    assert cell.rule == "drop-unknown-parameter"
    assert "n_estimators" not in cell.code
    namespace: dict = {}
    exec(cell.code, namespace)
    assert namespace["model"].C == 0.5 and namespace["model"].max_iter == 50


@pytest.mark.parametrize(
    "params",
    ["{'n_estimators': 100, 'C': 0.5}", "{'C': 0.5, 'n_estimators': 100}", "{'n_estimators': 100}"],
)
def test_unexpected_keyword_in_a_spec_dict_is_dropped(coder, params):
    code = f"candidate_spec = {{**spec, **{{'model': 'linear', 'params': {params}}}}}"
    error = ErrorInfo(
        name="TypeError",
        value="LogisticRegression.__init__() got an unexpected keyword argument 'n_estimators'",
    )
    cell = fix(coder, code, error)
    assert cell.rule == "drop-unknown-parameter"
    namespace = {"spec": {"model": "dummy"}}
    exec(cell.code, namespace)
    expected = {"C": 0.5} if "C" in params else {}
    assert namespace["candidate_spec"] == {"model": "linear", "params": expected}


def test_gives_up_on_an_unknown_error(coder):
    code = "x = float('abc')"
    cell = fix(coder, code, failure(code, {}))
    assert cell.gave_up is True
    assert cell.code == code and cell.rule == ""


def test_gives_up_on_an_undefined_name_with_no_candidate(coder):
    cell = fix(coder, "y = zqxv + 1", ErrorInfo(name="NameError", value="name 'zqxv' is not defined"))
    assert cell.gave_up is True and cell.code == "y = zqxv + 1"


def test_gives_up_on_an_unknown_column_with_no_close_match(coder):
    st = state(X=["age", "fare"])
    cell = fix(coder, "v = X['cabin_deck']", ErrorInfo(name="KeyError", value="'cabin_deck'"), st)
    assert cell.gave_up is True


def test_gives_up_without_an_error(coder):
    request = FixRequest(
        task=task(),
        code="x = 1",
        execution=Execution(ok=True),
        feedback="",
        attempt=1,
        state=state(),
    )
    cell = coder.handle(request)
    assert cell.gave_up is True and cell.code == "x = 1"
