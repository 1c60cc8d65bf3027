candidate_spec = {**spec, **$change}
result = evaluate(build_pipeline(candidate_spec, columns, TASK, SEED), X, y, folds, METRIC, TASK)
