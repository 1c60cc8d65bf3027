"""The kernel-side runtime of DSAssist: what generated cells import inside the kernel.

`toolkit` (profiling, folds, pipelines, scoring), `search` (Optuna TPE sampling) and
`probes` (state and checkpoints). It imports nothing of the host, so a notebook exported
from a run re-executes in any kernel that has these files on its path.
"""
