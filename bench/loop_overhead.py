"""How much time the loop itself costs, next to the experiments it runs.

Three figures, all measured in the same run (nothing is asserted; the script prints and exits 0):

1. Kernel round-trip: the median wall time of `Sandbox.execute("x = 1")` in a persistent
   kernel, over `--roundtrips` calls after a warm-up. Target: <= 5 ms median.
2. Framework time per step: a real `dsassist.run(...)` (budget 2m, seed 0) into a temporary
   folder; per step, `steps.duration_s` minus the time the kernel spent on that step's cells
   (the sum of its `executions.duration_s`) from `provenance.db`. This is planning, coding,
   the kernel-state probe and evaluation, not model fitting. Also shown: the same measured
   between the starts of consecutive steps, which adds the recording of the step (reflector,
   provenance rows, step note and the `spec = candidate_spec` cell after an accepted step).
3. State continuity: the cells of the run's first `--steps` steps (the last successful
   execution of each, plus `spec = candidate_spec` after each accepted step), run
   (a) in order in one fresh persistent kernel, and (b) as a new Python process per step,
   where step k re-runs the cells of steps 0..k because no state survives between processes.
   The ratio fresh / persistent is reported as a median over `--repeats` rounds.
   Target: the persistent kernel at least 20x faster for a 10-step sequence.

Run: /work/venv/bin/python bench/loop_overhead.py [--repeats 3] [--data CSV] [--target COL]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import dsassist
from common import heading, load_average, verdict  # bench/common.py: run as python bench/<name>.py
from dsassist.api import RunResult
from dsassist.controller import ACCEPT_CELL
from dsassist.sandbox import Sandbox

REPO = Path(__file__).resolve().parents[1]
SHIPPED_DATA = REPO / "src" / "dsassist" / "examples" / "titanic.csv"
DEV_DATA = Path("/work/shared/data/dev/tabular/titanic.csv")

ROUNDTRIP_TARGET_MS = 5.0
SPEEDUP_TARGET = 20.0
CELL_TIMEOUT_S = 300.0

# Runs in each fresh process: the cells of steps 0..k in one namespace, as a kernel would.
# stdout goes to /dev/null, so the repr that IPython's display() prints outside a kernel
# (the toolkit's `publish`) is discarded.
FRESH_RUNNER = """
import json, sys
steps = json.load(open(sys.argv[1]))
namespace = {"__name__": "__main__"}
for k, cells in enumerate(steps[: int(sys.argv[2]) + 1]):
    for i, code in enumerate(cells):
        exec(compile(code, f"<step {k} cell {i}>", "exec"), namespace)
"""
# What the setup cell imports: the price every fresh process pays before any work.
SETUP_IMPORTS = (
    "import matplotlib.pyplot, numpy, pandas, IPython.display; import dsassist.templates.tabular.toolkit"
)
UNJUDGED = ("setup", "profile", "guard", "validation", "final")
FRESH_ENV = {"MPLBACKEND": "Agg", "PYTHONHASHSEED": "0"}


@dataclass
class StepRow:
    """One step of the run, as the provenance database recorded it."""

    id: int
    template_id: str
    kind: str
    verdict: str
    started_at: datetime
    duration_s: float
    kernel_s: float
    code: str | None  # the last successful execution's code, if any

    @property
    def overhead_s(self) -> float:
        return self.duration_s - self.kernel_s


@dataclass
class SequenceTiming:
    """One round of the persistent-vs-fresh comparison."""

    startup_s: float  # starting the persistent kernel
    persistent_s: float  # the cells in the persistent kernel, start-up excluded
    step_s: list[float]  # persistent time per step
    fresh_s: float  # all fresh processes, one per step
    fresh_step_s: list[float]  # wall time of each fresh process
    errors: list[str]

    @property
    def persistent_with_startup_s(self) -> float:
        return self.startup_s + self.persistent_s


# ---- small helpers ----------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: list[float], q: int) -> float:
    """The q-th percentile (1..99) of at least two values."""
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


# ---- 1. kernel round-trip ---------------------------------------------------------------


def kernel_roundtrips(workdir: Path, repetitions: int, warmup: int = 20) -> list[float]:
    """Wall seconds of `execute("x = 1")` in one persistent kernel, after a warm-up."""
    with Sandbox(workdir) as sandbox:
        for _ in range(warmup):
            sandbox.execute("x = 1", timeout=30)
        times = []
        for _ in range(repetitions):
            start = time.perf_counter()
            sandbox.execute("x = 1", timeout=30)
            times.append(time.perf_counter() - start)
    return times


def report_roundtrips(times: list[float]) -> None:
    heading(f"1. kernel round-trip of `x = 1` ({len(times)} calls after warm-up)")
    med = median(times)
    print(
        f"median {ms(med)}   p10 {ms(percentile(times, 10))}   p90 {ms(percentile(times, 90))}"
        f"   min {ms(min(times))}   max {ms(max(times))}"
    )
    met = med * 1000 <= ROUNDTRIP_TARGET_MS
    print(f"target <= {ROUNDTRIP_TARGET_MS:.0f} ms median: {verdict(met)}")


# ---- 2. framework time per step ---------------------------------------------------------


def real_run(data: Path, target: str, out: Path) -> tuple[RunResult, float]:
    """A real closed-loop run, and its wall time as seen from here."""
    start = time.perf_counter()
    result = dsassist.run(data, target=target, out=out, budget="2m", seed=0)
    return result, time.perf_counter() - start


def read_steps(db_path: Path) -> list[StepRow]:
    """Every step of the (only) run in a provenance database, with its kernel time."""
    con = sqlite3.connect(db_path)
    try:
        (run_id,) = con.execute("SELECT id FROM runs ORDER BY created_at DESC LIMIT 1").fetchone()
        kernel = dict(
            con.execute(
                "SELECT step_id, SUM(duration_s) FROM executions WHERE run_id = ? GROUP BY step_id",
                (run_id,),
            ).fetchall()
        )
        code = dict(
            con.execute(
                "SELECT step_id, code FROM executions WHERE run_id = ? AND ok ORDER BY step_id, attempt, id",
                (run_id,),
            ).fetchall()
        )  # later rows overwrite earlier ones: the last successful attempt wins
        rows = con.execute(
            "SELECT id, template_id, kind, verdict, started_at, duration_s FROM steps "
            "WHERE run_id = ? ORDER BY id",
            (run_id,),
        ).fetchall()
    finally:
        con.close()
    return [
        StepRow(
            id=step_id,
            template_id=template_id,
            kind=kind,
            verdict=step_verdict,
            started_at=datetime.fromisoformat(started_at),
            duration_s=duration_s,
            kernel_s=kernel.get(step_id, 0.0),
            code=code.get(step_id),
        )
        for step_id, template_id, kind, step_verdict, started_at, duration_s in rows
    ]


def between_starts_overhead(steps: list[StepRow]) -> list[float]:
    """Per step but the last: time to the next step's start, minus the step's kernel time."""
    return [
        (after.started_at - step.started_at).total_seconds() - step.kernel_s
        for step, after in itertools.pairwise(steps)
    ]


def report_framework(result: RunResult, wall_s: float, steps: list[StepRow]) -> None:
    heading("2. framework time per step (step duration minus kernel execution time)")
    print(f"run: {len(steps)} steps, stop reason: {result.stop_reason!r}")
    print(f"run wall time {wall_s:.2f} s (result.elapsed_s {result.elapsed_s:.2f} s)")
    columns = ("step", "kernel", "framework")
    print(f"{'step':>4}  {'template':<20} {'verdict':<9}" + "".join(f" {c:>10}" for c in columns))
    for s in steps:
        print(
            f"{s.id:>4}  {s.template_id:<20} {s.verdict:<9} {ms(s.duration_s):>10}"
            f" {ms(s.kernel_s):>10} {ms(s.overhead_s):>10}"
        )
    overheads = [s.overhead_s for s in steps]
    gaps = between_starts_overhead(steps)
    print(
        f"median framework time per step: {ms(median(overheads))}"
        f"   (max {ms(max(overheads))}, total {sum(overheads):.3f} s)"
    )
    print(
        f"median framework time per step, start to next start: {ms(median(gaps))}"
        f"   (adds recording; {len(gaps)} steps)"
    )
    kernel_total = sum(s.kernel_s for s in steps)
    print(f"kernel time {kernel_total:.2f} s of {sum(s.duration_s for s in steps):.2f} s in steps")


# ---- 3. persistent kernel vs a fresh process per step -----------------------------------


def step_cells(steps: list[StepRow], count: int) -> list[list[str]]:
    """The cells each of the first `count` steps runs in the kernel, in order."""
    cells = []
    for s in steps[:count]:
        own = [s.code] if s.code is not None else []
        cells.append(own + ([ACCEPT_CELL] if s.verdict == "accepted" else []))
    return cells


def run_persistent(steps: list[list[str]], workdir: Path) -> tuple[float, float, list[float], list[str]]:
    """Start-up seconds, sequence seconds, seconds per step and errors, in one new kernel."""
    start = time.perf_counter()
    with Sandbox(workdir) as sandbox:
        ready = time.perf_counter()
        per_step, errors = [], []
        for k, cells in enumerate(steps):
            step_start = time.perf_counter()
            for code in cells:
                execution = sandbox.execute(code, timeout=CELL_TIMEOUT_S)
                if not execution.ok and execution.error is not None:
                    errors.append(f"persistent step {k}: {execution.error.name}")
            per_step.append(time.perf_counter() - step_start)
        done = time.perf_counter()
    return ready - start, done - ready, per_step, errors


def fresh_env() -> dict[str, str]:
    return {**os.environ, **FRESH_ENV}


def run_python(args: list[str], cwd: Path) -> tuple[float, str]:
    """Wall seconds of one new Python process, and the tail of its stderr if it failed."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=fresh_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=CELL_TIMEOUT_S * 2,
        check=False,
    )
    elapsed = time.perf_counter() - start
    failure = proc.stderr.strip().splitlines()[-1] if proc.returncode else ""
    return elapsed, failure or (f"exit {proc.returncode}" if proc.returncode else "")


def run_fresh(steps: list[list[str]], workdir: Path) -> tuple[list[float], list[str]]:
    """Seconds of each fresh process (step k re-runs steps 0..k), and errors."""
    cells_file = workdir / "cells.json"
    cells_file.write_text(json.dumps(steps))
    times, errors = [], []
    for k in range(len(steps)):
        elapsed, failure = run_python(["-c", FRESH_RUNNER, str(cells_file), str(k)], workdir)
        times.append(elapsed)
        if failure:
            errors.append(f"fresh step {k}: {failure}")
    return times, errors


def compare_once(steps: list[list[str]], workdir: Path) -> SequenceTiming:
    startup, persistent, per_step, errors = run_persistent(steps, workdir / "kernel")
    fresh_dir = workdir / "fresh"
    fresh_dir.mkdir(parents=True, exist_ok=True)
    fresh_times, fresh_errors = run_fresh(steps, fresh_dir)
    return SequenceTiming(startup, persistent, per_step, sum(fresh_times), fresh_times, errors + fresh_errors)


def process_costs(workdir: Path, repeats: int) -> tuple[float, float]:
    """Median seconds of a bare interpreter, and of one that only does the setup imports."""
    bare = [run_python(["-c", "pass"], workdir)[0] for _ in range(repeats)]
    imports = [run_python(["-c", SETUP_IMPORTS], workdir)[0] for _ in range(repeats)]
    return median(bare), median(imports)


def report_comparison(
    rows: list[StepRow], rounds: list[SequenceTiming], bare_s: float, imports_s: float
) -> None:
    n = len(rounds[0].step_s)
    heading(f"3. {n}-step sequence: persistent kernel vs a fresh Python process per step")
    print(
        f"{'round':>5} {'kernel start':>13} {'persistent':>11} {'incl. start':>12}"
        f" {'fresh':>9} {'ratio':>7} {'ratio incl.':>12}"
    )
    for i, r in enumerate(rounds):
        print(
            f"{i + 1:>5} {r.startup_s:>11.2f} s {r.persistent_s:>9.2f} s"
            f" {r.persistent_with_startup_s:>10.2f} s {r.fresh_s:>7.2f} s"
            f" {r.fresh_s / r.persistent_s:>6.1f}x"
            f" {r.fresh_s / r.persistent_with_startup_s:>11.1f}x"
        )
    persistent = median([r.persistent_s for r in rounds])
    with_startup = median([r.persistent_with_startup_s for r in rounds])
    fresh = median([r.fresh_s for r in rounds])
    ratio = median([r.fresh_s / r.persistent_s for r in rounds])
    ratio_startup = median([r.fresh_s / r.persistent_with_startup_s for r in rounds])
    print(
        f"median: persistent {persistent:.2f} s, incl. kernel start-up {with_startup:.2f} s, "
        f"fresh processes {fresh:.2f} s"
    )
    print(
        f"median ratio fresh / persistent: {ratio:.1f}x"
        f" (incl. kernel start-up {ratio_startup:.1f}x)"
        f"; target >= {SPEEDUP_TARGET:.0f}x: {verdict(ratio >= SPEEDUP_TARGET)}"
    )

    print("\nper step (medians over rounds): persistent cell time | fresh process wall time")
    for k, step in enumerate(rows[:n]):
        cell = median([r.step_s[k] for r in rounds])
        proc = median([r.fresh_step_s[k] for r in rounds])
        print(f"{k:>4}  {step.template_id:<20} {cell:>8.3f} s | {proc:>7.3f} s")

    per_step = [median([r.step_s[k] for r in rounds]) for k in range(n)]
    reruns = sum(sum(per_step[1 : k + 1]) for k in range(n))
    print("\nwhere the fresh-process time goes (estimates from the figures above):")
    print(
        f"  bare interpreter start {bare_s:.3f} s; with the setup imports {imports_s:.3f} s"
        f" -> {n} processes x {imports_s:.3f} s = {n * imports_s:.2f} s"
        f" ({100 * n * imports_s / fresh:.0f}% of fresh)"
    )
    print(
        f"  cells of steps 1..k re-run in process k (persistent cell times): {reruns:.2f} s"
        f" ({100 * reruns / fresh:.0f}% of fresh)"
    )
    explained = n * imports_s + reruns
    print(f"  together {explained:.2f} s of the measured {fresh:.2f} s")
    warm = persistent - per_step[0]
    print(
        f"  persistent without the setup step (imports and load, paid once): {warm:.2f} s"
        f" -> fresh / that = {fresh / warm:.1f}x"
    )
    model_steps = sum(t for t, s in zip(per_step, rows, strict=False) if s.kind not in UNJUDGED)
    print(
        f"  judged (model-fitting) steps take {model_steps:.2f} s of the persistent "
        f"{persistent:.2f} s ({100 * model_steps / persistent:.0f}%)"
    )
    errors = [e for r in rounds for e in r.errors]
    print(f"errors: {len(errors)}" + "".join(f"\n  {e}" for e in errors[:10]))


# ---- main -------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    default_data = DEV_DATA if DEV_DATA.exists() else SHIPPED_DATA
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="rounds of the comparison (3)")
    parser.add_argument("--data", type=Path, default=default_data, help=f"table to run on ({default_data})")
    parser.add_argument("--target", default="survived", help="target column (survived)")
    parser.add_argument("--roundtrips", type=int, default=200, help="trivial cells to time (200)")
    parser.add_argument("--steps", type=int, default=10, help="steps in the sequence (10)")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    started = time.perf_counter()
    print(f"python {sys.version.split()[0]}, data {args.data}, target {args.target!r}")
    print(f"{os.cpu_count()} CPUs, {load_average()}")
    with tempfile.TemporaryDirectory(prefix="dsassist-bench-") as tmp:
        root = Path(tmp)
        report_roundtrips(kernel_roundtrips(root / "roundtrip", args.roundtrips))

        result, wall_s = real_run(args.data, args.target, root / "run")
        rows = read_steps(root / "run" / "provenance.db")
        report_framework(result, wall_s, rows)

        steps = step_cells(rows, args.steps)
        rounds = [compare_once(steps, root / f"round{i}") for i in range(max(1, args.repeats))]
        bare_s, imports_s = process_costs(root, max(3, args.repeats))
        report_comparison(rows, rounds, bare_s, imports_s)
    print(f"\nbenchmark wall time {time.perf_counter() - started:.1f} s; {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
