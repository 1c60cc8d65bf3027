"""The provenance store at scale: 1,000 runs of 1,000 steps, in SQLite.

1. Bulk-loads synthetic lineage (each run a tree: every step's parent is the best step so far
   or, one time in five, an earlier one; kinds, verdicts and gains drawn at random; one
   execution with code and one lesson per step), through the store's own migrated schema.
2. Insert cost as the loop pays it: `ProvenanceStore.record_step` (the step, its execution
   and lesson, in one transaction) on the full store, per step: median and 95th percentile.
3. Each lineage query, `--repeats` times with varying arguments: median and 95th percentile.

Targets (issue 6): `improved` and `lineage` under 100 ms median at this size; record_step
under 1 ms per step.

    python bench/store_scale.py [--runs 1000] [--steps 1000] [--store PATH_OR_URL]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert

from common import heading, load_average, verdict
from dsassist.messages import Attempt, Execution, Metrics, StepSummary, Verdict
from dsassist.store import ProvenanceStore, schema
from dsassist.store.queries import Lineage

KINDS = ["model", "feature", "feature", "tuning", "explore", "ensemble"]
TEMPLATES = {
    "model": ["linear", "lightgbm", "random_forest"],
    "feature": ["missing_indicators", "target_encoding", "log_skewed", "date_parts"],
    "tuning": ["tune"],
    "explore": ["explore"],
    "ensemble": ["ensemble"],
}


def synthetic_run(
    rng: random.Random, run: int, n_steps: int
) -> tuple[dict, dict, list[dict], list[dict], list[dict]]:
    run_id = f"{run:032x}"
    metric = "roc_auc" if run % 3 else "rmse"
    steps, executions, lessons = [], [], []
    best, best_score = 0, 0.6
    for i in range(n_steps):
        kind = "setup" if i == 0 else rng.choice(KINDS)
        template = "setup" if i == 0 else rng.choice(TEMPLATES[kind])
        parent = None if i == 0 else (best if rng.random() < 0.8 else rng.randrange(i))
        gain = None if i == 0 else rng.gauss(-0.005, 0.015)
        kept = gain is not None and gain > 0.004
        score = None if i == 0 else best_score + gain
        if kept:
            best, best_score = i, score
        steps.append(
            {
                "run_id": run_id,
                "id": i,
                "parent_id": parent,
                "template_id": template,
                "kind": kind,
                "hypothesis": f"{template} helps",
                "params": {},
                "verdict": "accepted" if kept else "rejected",
                "metric": metric,
                "score": score,
                "std": 0.01,
                "gain": gain,
                "metrics": None,
                "error": None,
                "attempts": 1,
                "started_at": "2026-11-30T00:00:00",
                "duration_s": 1.0,
            }
        )
        executions.append(
            {
                "run_id": run_id,
                "step_id": i,
                "attempt": 0,
                "code": f"candidate_spec = {{'{template}': {i}}}",
                "ok": True,
                "stdout": "",
                "stderr": "",
                "outputs": [],
                "duration_s": 1.0,
            }
        )
        lessons.append({"run_id": run_id, "step_id": i, "text": f"{template}: {gain}"})
    created = f"2026-{1 + run % 12:02d}-{1 + run % 28:02d}T{run % 24:02d}:00:00"
    run_row = {
        "id": run_id,
        "created_at": created,
        "status": "finished",
        "question": "",
        "target": "y",
        "task": "binary",
        "metric": metric,
        "seed": 0,
        "config": {},
        "best_step": best,
        "best_score": best_score,
    }
    dataset = {
        "run_id": run_id,
        "path": f"/data/set{run % 50}.csv",
        "sha256": f"{run % 50:064x}",
        "n_rows": 1000,
        "n_cols": 20,
        "format": "csv",
    }
    return run_row, dataset, steps, executions, lessons


def fill(store: ProvenanceStore, n_runs: int, n_steps: int, seed: int = 0) -> float:
    rng = random.Random(seed)
    t0 = time.perf_counter()
    for run in range(n_runs):
        run_row, dataset, steps, executions, lessons = synthetic_run(rng, run, n_steps)
        with store.engine.begin() as c:
            c.execute(insert(schema.runs), [run_row])
            c.execute(insert(schema.datasets), [dataset])
            c.execute(insert(schema.steps), steps)
            c.execute(insert(schema.executions), executions)
            c.execute(insert(schema.lessons), lessons)
    return time.perf_counter() - t0


def record_step_times(store: ProvenanceStore, n: int) -> list[float]:
    """The loop's own write path, on the full store: one new run of `n` steps."""
    run_id = "f" * 32
    config = {"target": "y", "task": "binary", "metric": "roc_auc", "seed": 0}
    store.start_run(
        run_id,
        config,
        {"path": "/data/new.csv", "sha256": "e" * 64, "n_rows": 1, "n_cols": 1, "format": "csv"},
    )
    times = []
    for i in range(n):
        metrics = Metrics(metric="roc_auc", higher_is_better=True, folds=[0.8] * 5, mean=0.8, std=0.0)
        step = StepSummary(
            id=i,
            parent=i - 1 if i else None,
            template_id="linear",
            kind="model",
            hypothesis="linear helps",
            verdict=Verdict.ACCEPTED,
            metrics=metrics,
            gain=0.01,
            lesson="linear helped",
        )
        attempt = Attempt(
            code="candidate_spec = {'model': 'linear'}", execution=Execution(ok=True, stdout="ok")
        )
        t0 = time.perf_counter()
        store.record_step(run_id, step, [attempt], "2026-11-30T00:00:00")
        times.append(time.perf_counter() - t0)
    return times


def timed(fn, repeats: int) -> tuple[list[float], int]:
    times, rows = [], 0
    for i in range(repeats):
        t0 = time.perf_counter()
        rows = len(fn(i))
        times.append(time.perf_counter() - t0)
    return times, rows


def ms(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return f"median {1000 * statistics.median(values):8.2f} ms   p95 {1000 * p95:8.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument(
        "--store", default=None, help="a SQLite path or postgresql://... (default: a temp file)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        location = args.store or str(Path(tmp) / "provenance.db")
        store = ProvenanceStore(location)
        heading(
            f"fill: {args.runs} runs x {args.steps} steps into {location.split('@')[-1]}; {load_average()}"
        )
        seconds = fill(store, args.runs, args.steps)
        total = args.runs * args.steps
        print(
            f"bulk load: {total:,} steps (+ as many executions and lessons) in {seconds:.1f} s, "
            f"{total / seconds:,.0f} steps/s"
        )
        if "://" not in location:
            print(f"file size: {Path(location).stat().st_size / 1e6:,.0f} MB")

        heading("record_step on the full store (the loop's write path: step + execution + lesson)")
        inserts = record_step_times(store, 500)
        print(f"record_step: {ms(inserts)}   ({1 / statistics.median(inserts):,.0f} steps/s)")

        lineage = Lineage(store)
        rng = random.Random(1)
        runs = [f"{r:032x}" for r in range(args.runs)]
        queries = {
            "improved (roc_auc, gain >= 0.02, feature)": lambda i: lineage.improved(
                "roc_auc", 0.02, kind="feature"
            ),
            "improved (rmse, gain >= 0.03)": lambda i: lineage.improved("rmse", 0.03),
            "improved (one run)": lambda i: lineage.improved("roc_auc", 0.0, run=rng.choice(runs)),
            "lineage (a random step)": lambda i: lineage.lineage(rng.choice(runs), rng.randrange(args.steps)),
            "history (all runs)": lambda i: lineage.history(),
            "history (one dataset)": lambda i: lineage.history(dataset=f"set{rng.randrange(50)}.csv"),
            "compare (two runs)": lambda i: lineage.compare(rng.choice(runs), rng.choice(runs)),
        }
        heading(f"queries, {args.repeats} repeats each")
        medians = {}
        for name, fn in queries.items():
            times, rows = timed(fn, args.repeats)
            medians[name] = statistics.median(times)
            print(f"{name:<44} {ms(times)}   ({rows} rows)")
        heading("targets")
        worst_improved = max(v for k, v in medians.items() if k.startswith("improved"))
        print(
            f"improved under 100 ms median: {1000 * worst_improved:.2f} ms ({verdict(worst_improved < 0.1)})"
        )
        lin = medians["lineage (a random step)"]
        print(f"lineage under 100 ms median: {1000 * lin:.2f} ms ({verdict(lin < 0.1)})")
        med = statistics.median(inserts)
        print(f"record_step under 1 ms per step: {1000 * med:.3f} ms ({verdict(med < 0.001)})")
        store.close()


if __name__ == "__main__":
    main()
