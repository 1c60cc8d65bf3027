"""Scale-out figures: steps per minute with 1 and 2 parallel branches, and the bus overhead.

Branches: the same run (dataset, seed, budget) with one branch and with two, each kernel on
one core (as a Ray actor reserving one CPU would be), locally and on a local Ray; plus one
branch with both cores, the sequential run this machine gives by default. Steps per minute
are counted over the branching phase (from the baseline's end to the last judged step's
end): set-up before it and the final refit after it run alone whatever `--parallel` says.

Bus: both buses carry the same realistic message (a PlanRequest whose RunView holds a
profiled table and 30 steps) to the same offline planner; the agent's own work is measured
apart and subtracted, so the figure is the transport: serialization, Redis commands, the
worker's read-acknowledge cycle. The Redis worker runs in its own process, as `dsassist
worker` does.

Targets (issue 7): 2 branches at least 1.7x the steps per minute of 1; Redis under 2 ms
median per call on loopback.

    python bench/parallel.py [--data spambase.csv --target target] [--budget 120s]
        [--skip-branches] [--skip-ray] [--calls 300] [--redis redis://127.0.0.1:6379/15]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from common import heading, load_average, verdict
from dsassist import api
from dsassist.agents import Planner
from dsassist.bus import InProcessBus
from dsassist.bus.redis import RedisBus, Worker
from dsassist.controller import Controller
from dsassist.messages import Metrics, PlanRequest, RunView, StepSummary, Verdict
from dsassist.sandbox import Sandbox
from dsassist.sandbox.remote import RaySandbox, connect
from dsassist.templates import load_templates


def request() -> PlanRequest:
    profile = {
        "rows": 891,
        "columns": {f"c{i}": {"kind": "numeric", "missing": 0.1, "unique": 50} for i in range(14)},
        "suspicious": {},
        "target": {"kind": "binary"},
    }
    steps = [
        StepSummary(
            id=i,
            parent=i - 1 if i else None,
            template_id="linear",
            kind="model",
            hypothesis="linear helps",
            verdict=Verdict.REJECTED,
            metrics=Metrics(metric="roc_auc", higher_is_better=True, folds=[0.8] * 5, mean=0.8, std=0.01),
            gain=-0.001,
            duration_s=1.0,
            lesson="linear did not help",
        )
        for i in range(30)
    ]
    options = {"seed": 0, "task": "binary", "metric": "roc_auc", "target": "y", "path": "/d.csv", "folds": 5}
    return PlanRequest(
        run=RunView(
            task="binary",
            metric="roc_auc",
            profile=profile,
            steps=steps,
            best_step=5,
            time_left_s=60,
            steps_left=10,
            options=options,
        )
    )


def serve(url: str) -> None:
    Worker("planner", Planner(load_templates()), url, name="bench").serve()


def timed(call, n: int) -> list[float]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return times


def start_redis() -> tuple[str, subprocess.Popen | None]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    folder = tempfile.mkdtemp()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", folder],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    return f"redis://127.0.0.1:{port}/0", server


SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "dev" / "tabular"
SET_UP = {"setup", "profile", "guard", "validation", "baseline"}


class TimedLock:
    """The controller's lock, adding up how long it is held: the serial part of every step
    (agent calls, records), which bounds how many branches one controller can feed."""

    def __init__(self) -> None:
        self.lock, self.depth, self.held, self.since = threading.RLock(), 0, 0.0, 0.0

    def __enter__(self) -> TimedLock:
        self.lock.acquire()
        self.depth += 1
        if self.depth == 1:
            self.since = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.depth -= 1
        if self.depth == 0:
            self.held += time.perf_counter() - self.since
        self.lock.release()


def timed_controllers() -> list[TimedLock]:
    """Give every controller made from now on a TimedLock; the list fills with them."""
    locks: list[TimedLock] = []
    original = Controller.__init__

    def init(self: Controller, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)
        self.lock = TimedLock()
        locks.append(self.lock)

    Controller.__init__ = init
    return locks


LOCKS = timed_controllers()


def branching_rate(data: str, target: str, budget: str, **options: object) -> dict[str, float]:
    """One run; steps per minute over its branching phase and over the whole run."""
    finished: list[tuple[str, float]] = []  # (kind, seconds since the start) per finished step
    with tempfile.TemporaryDirectory(prefix="dsassist-bench-") as out:
        result = api.run(
            data,
            target,
            out,
            budget=budget,
            store="none",
            max_steps=400,
            overwrite=True,
            on_step=lambda p: finished.append((p.step.kind, p.elapsed_s)),
            **options,
        )
    start = max(t for kind, t in finished if kind in SET_UP)
    judged = [t for kind, t in finished if kind not in SET_UP and kind != "final"]
    window = max(judged) - start if judged else 0.0
    return {
        "steps": result.steps,
        "judged": len(judged),
        "window_s": window,
        "rate": 60 * len(judged) / window if window else 0.0,
        "whole": 60 * result.steps / result.elapsed_s,
        "best": result.best_score or float("nan"),
        "elapsed": result.elapsed_s,
        "serial_ms": 1000 * LOCKS[-1].held / result.steps,
    }


def branches(args: argparse.Namespace) -> None:
    data = args.data or str(SHARED / "spambase.csv")
    if not Path(data).is_file():
        print(f"no {data} (../shared is absent): give --data and --target")
        return
    heading(f"steps per minute, {Path(data).name}, budget {args.budget}, seed 0; {load_average()}")
    runs = [("local", 1, 2), ("local", 1, 1), ("local", 2, 1)]
    if not args.skip_ray:
        runs += [("ray", 1, 1), ("ray", 2, 1)]
    rates = {}
    print(
        f"{'executor':8} {'branches':>8} {'cores each':>10} {'judged':>6} {'window':>7} "
        f"{'steps/min':>9} {'whole run':>9} {'best':>8} {'elapsed':>7} {'serial/step':>11}"
    )
    for executor, parallel, cores in runs:
        r = branching_rate(data, args.target, args.budget, executor=executor, parallel=parallel, cores=cores)
        rates[executor, parallel, cores] = r
        print(
            f"{executor:8} {parallel:>8} {cores:>10} {r['judged']:>6} {r['window_s']:>6.1f}s "
            f"{r['rate']:>9.1f} {r['whole']:>9.1f} {r['best']:>8.4f} {r['elapsed']:>6.1f}s "
            f"{r['serial_ms']:>8.1f} ms",
            flush=True,
        )
    heading("target: 2 branches >= 1.7x the steps per minute of 1 (one core per kernel)")
    for executor in ("local", "ray"):
        if (executor, 2, 1) in rates:
            ratio = rates[executor, 2, 1]["rate"] / rates[executor, 1, 1]["rate"]
            whole = rates[executor, 2, 1]["whole"] / rates[executor, 1, 1]["whole"]
            print(
                f"{executor}: {ratio:.2f}x over the branching phase ({verdict(ratio >= 1.7)}); "
                f"{whole:.2f}x over the whole run"
            )
    same = rates["local", 2, 1]["rate"] / rates["local", 1, 2]["rate"]
    print(f"this machine's two cores as two branches vs one branch with both: {same:.2f}x")
    serial = statistics.median(r["serial_ms"] for r in rates.values())
    print(
        f"serial controller time (under its lock) per step: median {serial:.1f} ms, so one controller "
        f"feeds at most {60000 / serial:,.0f} steps/min whatever the number of workers"
    )


def kernel_calls(args: argparse.Namespace) -> None:
    """What a kernel in a Ray actor adds to each call the controller makes (five or more a step)."""
    heading(f"kernel call round trip (an empty cell), {args.calls} calls; {load_average()}")
    with tempfile.TemporaryDirectory(prefix="dsassist-bench-") as tmp:
        with Sandbox(Path(tmp) / "local", pool=0) as sandbox:
            local = statistics.median(timed(lambda: sandbox.execute("pass"), args.calls))
        connect(None, 1)
        with RaySandbox(Path(tmp) / "ray", pool=0) as actor:
            remote = statistics.median(timed(lambda: actor.execute("pass"), args.calls))
    print(f"local kernel: median {1000 * local:.2f} ms; kernel in a Ray actor: median {1000 * remote:.2f} ms")


def bus(args: argparse.Namespace) -> None:
    if args.redis is None and shutil.which("redis-server") is None:
        print("no redis-server here and no --redis URL: nothing to measure")
        return
    url, server = (args.redis, None) if args.redis else start_redis()
    message, planner = request(), Planner(load_templates())
    heading(f"bus round trip per agent call, {args.calls} calls; {load_average()}")
    agent = statistics.median(timed(lambda: planner.handle(message), args.calls))
    local = InProcessBus({"planner": planner})
    in_process = statistics.median(timed(lambda: local.request("planner", message), args.calls))
    worker = multiprocessing.get_context("spawn").Process(target=serve, args=(url,), daemon=True)
    worker.start()
    redis_bus = RedisBus(url, timeout_s=30)
    try:
        redis_bus.request("planner", message)  # the worker is up and its group exists
        redis_times = timed(lambda: redis_bus.request("planner", message), args.calls)
    finally:
        redis_bus.close()
        worker.terminate()
        if server is not None:
            server.terminate()
    over_local = in_process - agent
    over_redis = statistics.median(redis_times) - agent
    size = len(message.model_dump_json())
    print(f"message: PlanRequest of {size:,} bytes as JSON; the planner's own work: {1000 * agent:.3f} ms")
    print(f"in-process bus: median {1000 * in_process:.3f} ms per call, overhead {1000 * over_local:.3f} ms")
    p95 = sorted(redis_times)[int(0.95 * len(redis_times))]
    print(
        f"Redis Streams:  median {1000 * statistics.median(redis_times):.3f} ms per call, "
        f"overhead {1000 * over_redis:.3f} ms (p95 {1000 * p95:.3f} ms)"
    )
    heading("target")
    print(f"Redis overhead under 2 ms median: {1000 * over_redis:.3f} ms ({verdict(over_redis < 0.002)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="a table (default: ../shared's spambase.csv)")
    parser.add_argument("--target", default="target")
    parser.add_argument("--budget", default="120s")
    parser.add_argument("--skip-branches", action="store_true")
    parser.add_argument("--skip-ray", action="store_true")
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--redis", default=None, help="a Redis URL (default: start a redis-server here)")
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores")
    if not args.skip_branches:
        branches(args)
    if not args.skip_ray:
        kernel_calls(args)
    bus(args)


if __name__ == "__main__":
    main()
