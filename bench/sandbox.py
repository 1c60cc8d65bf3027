"""What the sandbox costs: starting a kernel, restoring a checkpoint, and confining the kernel.

Three figures, all measured in the same run (nothing is asserted; the script prints and exits 0):

1. Kernel start: `start()` of a `Sandbox(pool=0)` (a cold kernel, with and without bubblewrap)
   against `restart()` of a `Sandbox(pool=1)` whose spare had `--settle` seconds to boot. The
   restart is also taken apart, step by step as `Sandbox.restart` and `Sandbox.start` do it:
   shutting the old kernel down, the pooled kernel ready (`_spares.pop(0)` and `wait_ready`),
   the in-kernel set-up code, and launching the next spare.
   Target: a pooled kernel ready in under 50 ms.
2. Checkpoint restore against replay, for a namespace of about `--mb` MB: a pandas DataFrame
   generated with numpy, engineered features and a LightGBM model fitted on a fifth of the rows.
   The namespace is checkpointed; then, in a fresh kernel each time, it is either restored
   (`restart()` then `restore()`, which is what `branch()` does) or rebuilt by running its cells
   again. To show what the restore spends its time on, a third fresh kernel runs the imports
   cell first and then `restore()`, which has only the objects left to load. Also shown: the
   time and size of writing the checkpoint (into an emptied object store), and the time of a
   second checkpoint of the unchanged namespace, whose objects are already stored (deduplicated).
   Target: restore at least 5x faster than replay.
3. Isolation overhead per cell: the round-trip of `x = 1` in a kernel under bubblewrap
   (`isolation="auto"`) and one without (`isolation="none"`), both alive at once, called in
   alternation after a warm-up so that drift in the machine's load falls on both.
   Target: under 1 ms per cell.

Run: /work/venv/bin/python bench/sandbox.py [--repeats 5] [--mb 100] [--roundtrips 300] [--settle 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from common import heading, load_average, verdict  # bench/common.py: run as python bench/<name>.py
from dsassist.sandbox import Sandbox
from dsassist.sandbox.checkpoint import KERNEL_CODE, Checkpoint
from dsassist.sandbox.isolation import Isolation, bubblewrap_works
from dsassist.sandbox.kernel import _STATE_PROBE

POOLED_READY_TARGET_MS = 50.0
RESTORE_SPEEDUP_TARGET = 5.0
ISOLATION_TARGET_MS = 1.0
CELL_TIMEOUT_S = 600.0
# float64 x 12 features + 2 engineered, int64 day, int8 category codes, int8 target
ROW_BYTES = 8 * 14 + 8 + 1 + 1

# The cells that build the namespace, as str.format templates; `{rows}` sets the size of the frame.
NAMESPACE_CELLS = (
    """import numpy as np
import pandas as pd
import lightgbm as lgb
from sklearn.metrics import roc_auc_score""",
    """rng = np.random.default_rng(0)
n = {rows}
X = rng.standard_normal((n, 12))
df = pd.DataFrame(X, columns=[f"x{{i}}" for i in range(12)])
df["segment"] = pd.Categorical.from_codes(rng.integers(0, 50, n), categories=[f"s{{i}}" for i in range(50)])
df["day"] = rng.integers(0, 3650, n)
logit = X[:, 0] - 0.5 * X[:, 1] ** 2 + np.sin(3 * X[:, 2]) + 0.3 * X[:, 3] * X[:, 4]
df["target"] = (logit + 0.02 * df["segment"].cat.codes + rng.logistic(size=n) > 0).astype("int8")
del X, logit""",
    """df["ratio"] = df["x5"] / (df["x6"].abs() + 1)
df["segment_mean"] = df.groupby("segment", observed=True)["x0"].transform("mean")
features = [c for c in df.columns if c != "target"]""",
    """order = np.random.default_rng(1).permutation(len(df))
train_idx, test_idx = order[: len(df) // 5], order[len(df) // 5 : len(df) // 5 + len(df) // 10]
model = lgb.LGBMClassifier(
    n_estimators=300, num_leaves=63, learning_rate=0.05, n_jobs=1, verbose=-1, random_state=0
)
model.fit(df.iloc[train_idx][features], df.iloc[train_idx]["target"])""",
    """test = df.iloc[test_idx]
score = roc_auc_score(test["target"], model.predict_proba(test[features])[:, 1])
del test""",
)
CELL_NAMES = ("imports", "generate frame", "features", "fit LightGBM", "score hold-out")
# Printed after a restore and after a replay: the two must agree.
FINGERPRINT_CELL = (
    "print(df.shape, round(float(df.select_dtypes('number').sum().sum()), 3), round(score, 6),"
    " model.booster_.num_trees(), round(df.memory_usage(deep=True).sum() / 1e6, 1))"
)


@dataclass
class RestartParts:
    """One pooled restart, taken apart."""

    shutdown_s: float  # shutting the old kernel down
    ready_s: float  # the spare taken from the pool and ready (kernel_info answered)
    setup_s: float  # the in-kernel helper code that `start()` runs
    relaunch_s: float  # launching the next spare (it boots in the background)

    @property
    def usable_s(self) -> float:
        return self.ready_s + self.setup_s


@dataclass
class StartTimings:
    cold_s: list[float]  # start() with pool=0, isolation auto
    cold_plain_s: list[float]  # start() with pool=0, isolation none
    restart_s: list[float]  # restart() with a booted spare
    parts: list[RestartParts]


@dataclass
class CheckpointTiming:
    write_s: float  # first checkpoint, into an empty object store
    new_bytes: int
    store_bytes: int  # objects folder: sum of file sizes
    store_disk_bytes: int  # objects folder: blocks on disk
    dedup_s: float  # second checkpoint of the unchanged namespace
    dedup_new_bytes: int


@dataclass
class RebuildTiming:
    """One round of restore against replay, each in a fresh kernel."""

    restart_before_restore_s: float
    restore_s: float
    imports_s: float  # in another fresh kernel: the imports cell, then
    objects_s: float  # restore(), which then has only the objects to load
    restart_before_replay_s: float
    replay_cells_s: list[float]
    restored_matches: bool

    @property
    def replay_s(self) -> float:
        return sum(self.replay_cells_s)

    @property
    def branch_s(self) -> float:
        return self.restart_before_restore_s + self.restore_s


# ---- small helpers ----------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: list[float], q: int) -> float:
    """The q-th percentile (1..99) of at least two values."""
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def spread(values: list[float]) -> str:
    """Median with min and max, in ms."""
    return f"{ms(median(values)):>10}   (min {ms(min(values))}, max {ms(max(values))})"


def timed(action: Callable[[], object]) -> float:
    """Wall seconds of one call."""
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


# ---- 1. kernel start --------------------------------------------------------------------


def cold_start(workdir: Path, isolation: Isolation) -> float:
    """Seconds of `start()` (until the kernel is ready and set up) with no pool."""
    sandbox = Sandbox(workdir, pool=0, isolation=isolation)
    try:
        return timed(sandbox.start)
    finally:
        sandbox.close()


def pooled_restart(sandbox: Sandbox, settle_s: float) -> float:
    """Seconds of `restart()` once the spare had `settle_s` to boot."""
    time.sleep(settle_s)
    return timed(sandbox.restart)


def pooled_restart_parts(sandbox: Sandbox, settle_s: float) -> RestartParts:
    """`restart()` step by step, as `Sandbox.restart` and `Sandbox.start` do it."""
    time.sleep(settle_s)
    old = sandbox._kernel
    assert old is not None and sandbox._spares, "the sandbox must be started, with a spare"
    shutdown_s = timed(old.shutdown)
    sandbox._kernel = None
    start = time.perf_counter()
    sandbox.confinement.prepare(sandbox.workdir)
    kernel = sandbox._spares.pop(0)
    kernel.wait_ready(sandbox.startup_timeout)
    ready = time.perf_counter()
    sandbox._kernel = kernel
    sandbox._run_silent(_STATE_PROBE + KERNEL_CODE)
    setup = time.perf_counter()
    sandbox._spares.append(sandbox._launch())
    relaunched = time.perf_counter()
    return RestartParts(shutdown_s, ready - start, setup - ready, relaunched - setup)


def measure_starts(root: Path, repeats: int, settle_s: float) -> StartTimings:
    cold, cold_plain = [], []
    for i in range(repeats):  # alternating, so that drift in the machine's load falls on both
        cold.append(cold_start(root / f"cold{i}", "auto"))
        cold_plain.append(cold_start(root / f"plain{i}", "none"))
    with Sandbox(root / "pooled", pool=1) as sandbox:
        restarts = [pooled_restart(sandbox, settle_s) for _ in range(repeats)]
        parts = [pooled_restart_parts(sandbox, settle_s) for _ in range(repeats)]
        check = sandbox.execute("x = 1", timeout=30)  # the hand-assembled restart left it working
    if not check.ok:
        print(f"warning: the kernel after the step-by-step restart failed a cell: {check.error}")
    return StartTimings(cold, cold_plain, restarts, parts)


def report_starts(t: StartTimings, settle_s: float) -> None:
    heading(f"1. kernel start ({len(t.cold_s)} repetitions, medians)")
    print(f"cold start(), pool=0, bubblewrap on:      {spread(t.cold_s)}")
    print(f"cold start(), pool=0, bubblewrap off:     {spread(t.cold_plain_s)}")
    print(f"restart(), pool=1, spare booted {settle_s:.0f} s:     {spread(t.restart_s)}")
    print("restart() step by step:")
    rows = (
        ("shut the old kernel down", [p.shutdown_s for p in t.parts]),
        ("pooled kernel ready (pop + wait_ready)", [p.ready_s for p in t.parts]),
        ("in-kernel set-up code", [p.setup_s for p in t.parts]),
        ("ready and set up (usable)", [p.usable_s for p in t.parts]),
        ("launch the next spare", [p.relaunch_s for p in t.parts]),
    )
    for label, values in rows:
        print(f"  {label:<39} {spread(values)}")
    ready = median([p.ready_s for p in t.parts])
    usable = median([p.usable_s for p in t.parts])
    cold = median(t.cold_s)
    restart = median(t.restart_s)
    shutdown = median([p.shutdown_s for p in t.parts])
    print(
        f"cold / pooled-ready: {cold / ready:.0f}x; cold / restart(): {cold / restart:.1f}x;"
        f" shutdown share of restart(): {100 * shutdown / restart:.0f}%"
    )
    target = POOLED_READY_TARGET_MS / 1000
    print(
        f"target: pooled kernel ready < {POOLED_READY_TARGET_MS:.0f} ms:"
        f" {ms(ready)} {verdict(ready < target)}"
        f" (usable, with set-up code: {ms(usable)} {verdict(usable < target)})"
    )


# ---- 2. checkpoint restore vs replay ----------------------------------------------------


def namespace_cells(size_mb: int) -> list[str]:
    """The cells that build a namespace whose frame holds about `size_mb` MB."""
    rows = max(10_000, size_mb * 1_000_000 // ROW_BYTES)
    return [cell.format(rows=rows) for cell in NAMESPACE_CELLS]


def run_cells(sandbox: Sandbox, cells: list[str]) -> list[float]:
    """Wall seconds of each cell; a failing cell stops the benchmark."""
    times = []
    for i, code in enumerate(cells):
        start = time.perf_counter()
        result = sandbox.execute(code, timeout=CELL_TIMEOUT_S)
        times.append(time.perf_counter() - start)
        if not result.ok:
            raise RuntimeError(f"cell {i} failed: {result.error}")
    return times


def fingerprint(sandbox: Sandbox) -> str:
    """Shape, a checksum, the score and the model's size, as the kernel prints them."""
    result = sandbox.execute(FINGERPRINT_CELL, timeout=CELL_TIMEOUT_S)
    return result.stdout.strip() if result.ok else f"error: {result.error}"


def folder_size(folder: Path) -> tuple[int, int]:
    """Bytes of the files in a folder, and the bytes of the blocks they take on disk."""
    files = [p.stat() for p in folder.rglob("*") if p.is_file()]
    return sum(s.st_size for s in files), sum(s.st_blocks * 512 for s in files)


def checkpoint_once(sandbox: Sandbox, round_: int) -> tuple[Checkpoint, CheckpointTiming]:
    """A checkpoint into an emptied object store, then a second one of the same namespace."""
    objects = sandbox.checkpoints / "objects"
    shutil.rmtree(objects, ignore_errors=True)
    first = sandbox.checkpoint(f"step-{round_}")
    store, disk = folder_size(objects)
    second = sandbox.checkpoint(f"step-{round_}-again")
    timing = CheckpointTiming(
        first.duration_s, first.new_bytes, store, disk, second.duration_s, second.new_bytes
    )
    return second, timing


def rebuild_once(sandbox: Sandbox, checkpoint: Checkpoint, cells: list[str], expected: str) -> RebuildTiming:
    """Restore, restore split into imports and objects, and replay, each in a fresh kernel."""
    restart_restore = timed(sandbox.restart)
    restore = timed(lambda: sandbox.restore(checkpoint))
    matches = fingerprint(sandbox) == expected
    sandbox.restart()
    (imports,) = run_cells(sandbox, cells[:1])
    objects = timed(lambda: sandbox.restore(checkpoint))
    restart_replay = timed(sandbox.restart)
    replay = run_cells(sandbox, cells)
    return RebuildTiming(restart_restore, restore, imports, objects, restart_replay, replay, matches)


def measure_rebuild(
    root: Path, size_mb: int, repeats: int
) -> tuple[list[float], str, list[CheckpointTiming], list[RebuildTiming], list[str]]:
    """Build the namespace once, checkpoint it `repeats` times, restore and replay `repeats` times."""
    cells = namespace_cells(size_mb)
    with Sandbox(root / "namespace", pool=1) as sandbox:
        build = run_cells(sandbox, cells)
        expected = fingerprint(sandbox)
        checkpoints = [checkpoint_once(sandbox, i) for i in range(repeats)]
        checkpoint = checkpoints[-1][0]
        unpicklable = checkpoint.unpicklable
        rounds = [rebuild_once(sandbox, checkpoint, cells, expected) for _ in range(repeats)]
    return build, expected, [t for _, t in checkpoints], rounds, unpicklable


def report_rebuild(
    build: list[float],
    expected: str,
    checkpoints: list[CheckpointTiming],
    rounds: list[RebuildTiming],
    unpicklable: list[str],
) -> None:
    heading(f"2. restore a checkpoint vs replay its cells ({len(rounds)} repetitions, medians)")
    print(f"namespace: df.shape, numeric sum, score, trees, df MB = {expected}")
    print(f"built in {sum(build):.2f} s; unpicklable names: {unpicklable or 'none'}")
    c = checkpoints
    print(
        f"checkpoint write: {median([t.write_s for t in c]):.3f} s"
        f" (min {min(t.write_s for t in c):.3f}, max {max(t.write_s for t in c):.3f});"
        f" new_bytes {mb(int(median([t.new_bytes for t in c])))};"
        f" objects folder {mb(int(median([t.store_bytes for t in c])))}"
        f" ({mb(int(median([t.store_disk_bytes for t in c])))} on disk)"
    )
    print(
        f"second checkpoint, unchanged namespace: {median([t.dedup_s for t in c]):.3f} s,"
        f" new_bytes {int(median([t.dedup_new_bytes for t in c]))};"
        f" write / dedup {median([t.write_s / t.dedup_s for t in c]):.1f}x"
    )
    print(f"{'round':>5} {'restart':>9} {'restore':>9} {'restart':>9} {'replay':>9} {'ratio':>7}  same state")
    for i, r in enumerate(rounds):
        print(
            f"{i + 1:>5} {r.restart_before_restore_s:>7.3f} s {r.restore_s:>7.3f} s"
            f" {r.restart_before_replay_s:>7.3f} s {r.replay_s:>7.2f} s"
            f" {r.replay_s / r.restore_s:>6.1f}x  {'yes' if r.restored_matches else 'NO'}"
        )
    restore = median([r.restore_s for r in rounds])
    replay = median([r.replay_s for r in rounds])
    ratio = median([r.replay_s / r.restore_s for r in rounds])
    branch_ratio = median([(r.restart_before_replay_s + r.replay_s) / r.branch_s for r in rounds])
    branch = median([r.branch_s for r in rounds])
    print(
        f"median restore {restore:.3f} s, replay {replay:.2f} s;"
        f" restart + restore (= branch()) {branch:.3f} s"
    )
    print("replay per cell (medians):")
    for k, name in enumerate(CELL_NAMES):
        print(f"  {name:<16} {median([r.replay_cells_s[k] for r in rounds]):>7.3f} s")
    print(f"median ratio replay / restore: {ratio:.1f}x (each with its restart: {branch_ratio:.1f}x)")
    met = ratio >= RESTORE_SPEEDUP_TARGET
    print(f"target: restore >= {RESTORE_SPEEDUP_TARGET:.0f}x faster than replay: {verdict(met)}")
    imports = median([r.imports_s for r in rounds])
    objects = median([r.objects_s for r in rounds])
    print(
        f"restore split (another fresh kernel): the imports cell {imports:.3f} s,"
        f" then restore() of the objects alone {objects:.3f} s"
    )
    print(
        "replay without its imports cell / restore of the objects alone:"
        f" {median([(r.replay_s - r.replay_cells_s[0]) / r.objects_s for r in rounds]):.1f}x"
    )


# ---- 3. isolation overhead per cell -----------------------------------------------------


def interleaved_roundtrips(root: Path, calls: int, warmup: int = 30) -> dict[str, list[float]]:
    """Wall seconds of `execute("x = 1")` in a confined and an unconfined kernel, alternating."""
    isolations: tuple[Isolation, Isolation] = ("auto", "none")
    sandboxes = {name: Sandbox(root / name, pool=0, isolation=name) for name in isolations}
    times: dict[str, list[float]] = {name: [] for name in isolations}
    try:
        for sandbox in sandboxes.values():
            sandbox.start()
        for i in range(warmup + calls):
            order = isolations if i % 2 == 0 else isolations[::-1]
            for name in order:
                elapsed = timed(lambda s=sandboxes[name]: s.execute("x = 1", timeout=30))
                if i >= warmup:
                    times[name].append(elapsed)
    finally:
        for sandbox in sandboxes.values():
            sandbox.close()
    return times


def report_isolation(times: dict[str, list[float]], bwrap: bool) -> None:
    on, off = times["auto"], times["none"]
    heading(f"3. isolation overhead per cell: `x = 1`, {len(on)} calls each, alternating")
    if not bwrap:
        print("warning: bubblewrap does not work here, so isolation='auto' runs unconfined too")
    for label, values in (("bubblewrap on  (auto)", on), ("bubblewrap off (none)", off)):
        print(
            f"{label}: median {ms(median(values))}   p10 {ms(percentile(values, 10))}"
            f"   p90 {ms(percentile(values, 90))}"
        )
    difference = median(on) - median(off)
    paired = median([a - b for a, b in zip(on, off, strict=True)])
    print(f"difference of medians: {ms(difference)}; median of paired differences: {ms(paired)}")
    print(f"ratio on / off: {median(on) / median(off):.2f}x")
    met = difference * 1000 < ISOLATION_TARGET_MS
    print(f"target: overhead < {ISOLATION_TARGET_MS:.0f} ms per cell: {verdict(met)}")


# ---- main -------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="repetitions of each measurement (5)")
    parser.add_argument("--mb", type=int, default=100, help="size of the namespace's DataFrame in MB (100)")
    parser.add_argument("--roundtrips", type=int, default=300, help="trivial cells per isolation mode (300)")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds for a spare kernel to boot (2)")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    repeats = max(1, args.repeats)
    started = time.perf_counter()
    bwrap = bubblewrap_works()
    state = "works" if bwrap else "unavailable"
    print(f"python {sys.version.split()[0]}, bubblewrap {state}, uid {os.geteuid()}")
    print(f"{os.cpu_count()} CPUs, {load_average()}")
    with tempfile.TemporaryDirectory(prefix="dsassist-bench-") as tmp:
        root = Path(tmp)
        report_starts(measure_starts(root / "start", repeats, args.settle), args.settle)
        report_rebuild(*measure_rebuild(root / "rebuild", args.mb, repeats))
        report_isolation(interleaved_roundtrips(root / "isolation", max(2, args.roundtrips)), bwrap)
    print(f"\nbenchmark wall time {time.perf_counter() - started:.1f} s; {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
