"""Templates whose cells fail the way generated code often does, for the fix-in-place tests."""

from dsassist.templates import Template

FAULTY_IMPORT = """
candidate_spec = {**spec, "impute": "most_frequent"}
QuantileTransformer(n_quantiles=10)  # used without its import
result = evaluate(build_pipeline(candidate_spec, columns, TASK, SEED), X, y, folds, METRIC, TASK)
"""

FAULTY_COLUMN = """
candidate_spec = {**spec, "missing_indicators": True}
print("fare median:", X["faer"].median())  # a misspelt column
result = evaluate(build_pipeline(candidate_spec, columns, TASK, SEED), X, y, folds, METRIC, TASK)
"""


def after_models(run):
    return [{}] if any(s.kind == "model" for s in run.steps) else []


TEMPLATES = [
    Template("probe_import", "feature", "Most-frequent imputation helps", FAULTY_IMPORT, after_models),
    Template("probe_column", "feature", "Indicators help, checked on fare", FAULTY_COLUMN, after_models),
]
