"""The bus: round-trip overhead per agent call, in-process vs Redis Streams on loopback.

Both buses carry the same realistic message (a PlanRequest whose RunView holds a profiled
table and 30 steps) to the same offline planner; the agent's own work is measured apart and
subtracted, so the figure is the transport: serialization, Redis commands, the worker's
read-acknowledge cycle. The Redis worker runs in its own process, as `dsassist worker` does.

Target (issue 7): Redis under 2 ms median per call on loopback.

The other half of issue 7's benchmark (steps per minute with 1 and 2 parallel branches on
Ray) waits for the Ray executor, which is not built yet.

    python bench/parallel.py [--calls 300] [--redis redis://127.0.0.1:6379/15]
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import socket
import statistics
import subprocess
import tempfile
import time

from common import heading, load_average, verdict
from dsassist.agents import Planner
from dsassist.bus import InProcessBus
from dsassist.bus.redis import RedisBus, Worker
from dsassist.messages import Metrics, PlanRequest, RunView, StepSummary, Verdict
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--redis", default=None, help="a Redis URL (default: start a redis-server here)")
    args = parser.parse_args()
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
    bus = RedisBus(url, timeout_s=30)
    try:
        bus.request("planner", message)  # the worker is up and its group exists
        redis_times = timed(lambda: bus.request("planner", message), args.calls)
    finally:
        bus.close()
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


if __name__ == "__main__":
    main()
