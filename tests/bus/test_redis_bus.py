"""Agents as services on Redis Streams, against a real redis-server started by the test."""

from __future__ import annotations

import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from dsassist.bus.redis import PREFIX, RedisBus, Worker
from dsassist.errors import DSAssistError
from dsassist.messages import Plan, PlanRequest, RunView, Task

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="no redis-server binary here")


@pytest.fixture
def redis_url(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    import redis

    for _ in range(100):
        try:
            redis.Redis.from_url(url).ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    yield url
    server.terminate()
    server.wait(10)


class Counting:
    """A planner stand-in that counts what it handles."""

    def __init__(self, fail: bool = False) -> None:
        self.handled = 0
        self.fail = fail

    def handle(self, message):
        self.handled += 1
        if self.fail:
            raise RuntimeError("poison")
        return Plan(
            tasks=[Task(template_id="t", kind="k", hypothesis=f"reply to step {len(message.run.steps)}")]
        )


REQUEST = PlanRequest(run=RunView(task="binary", metric="roc_auc", time_left_s=10, steps_left=5))


def serve_in_thread(worker: Worker, stop: threading.Event) -> threading.Thread:
    thread = threading.Thread(target=worker.serve, args=(stop.is_set,), daemon=True)
    thread.start()
    return thread


def test_request_and_correlated_reply(redis_url):
    agent, stop = Counting(), threading.Event()
    serve_in_thread(Worker("planner", agent, redis_url), stop)
    bus = RedisBus(redis_url, timeout_s=10)
    try:
        reply = bus.request("planner", REQUEST)
        assert isinstance(reply, Plan) and reply.tasks[0].hypothesis == "reply to step 0"
        assert bus.request("planner", REQUEST).tasks[0].hypothesis == "reply to step 0"
        assert agent.handled == 2
    finally:
        stop.set()
        bus.close()


def test_no_worker_is_a_clear_timeout(redis_url):
    bus = RedisBus(redis_url, timeout_s=0.5)
    with pytest.raises(DSAssistError, match="no coder worker answered within 0s"):
        bus.request("coder", REQUEST)


def test_dead_redis_is_one_line():
    with pytest.raises(DSAssistError, match="does not answer"):
        RedisBus("redis://127.0.0.1:9/0")


def test_a_redelivered_request_is_answered_again_not_handled_again(redis_url):
    agent = Counting()
    worker = Worker("planner", agent, redis_url)
    bus = RedisBus(redis_url, timeout_s=5)
    client = worker.client
    client.xadd(f"{PREFIX}:planner", {"id": "req-1", "reply_to": bus.replies, "message": _message()})
    ((_, entries),) = client.xreadgroup("workers", "w1", {f"{PREFIX}:planner": ">"}, count=1)
    entry_id, data = entries[0]
    worker._handle(entry_id, data, redelivered=False)
    worker._handle(entry_id, data, redelivered=True)  # claimed again, as at-least-once delivery may
    assert agent.handled == 1
    replies = client.xrange(bus.replies)
    assert len(replies) == 2 and replies[0][1] == replies[1][1]


def test_a_crashed_workers_request_is_claimed_by_another(redis_url):
    stop = threading.Event()
    crashed = Worker("planner", Counting(), redis_url, name="crashed")
    bus = RedisBus(redis_url, timeout_s=10)
    # the crashed worker read the request and died before answering: it stays pending
    thread = threading.Thread(target=lambda: bus_reply.append(bus.request("planner", REQUEST)), daemon=True)
    bus_reply: list = []
    thread.start()
    for _ in range(100):
        if crashed.client.xreadgroup("workers", "crashed", {f"{PREFIX}:planner": ">"}, count=1):
            break
        time.sleep(0.02)
    rescuer = Counting()
    serve_in_thread(Worker("planner", rescuer, redis_url, name="rescuer", claim_after_s=0.3), stop)
    thread.join(10)
    stop.set()
    assert rescuer.handled == 1 and bus_reply and bus_reply[0].tasks[0].hypothesis == "reply to step 0"


def test_a_poison_request_goes_to_the_dead_letter_stream(redis_url):
    stop = threading.Event()
    agent = Counting(fail=True)
    worker = Worker("planner", agent, redis_url, claim_after_s=0.1, max_deliveries=2)
    serve_in_thread(worker, stop)
    bus = RedisBus(redis_url, timeout_s=20)
    started = time.monotonic()
    with pytest.raises(DSAssistError, match="dead"):
        bus.request("planner", REQUEST)
    stop.set()
    assert time.monotonic() - started < 10  # told at once, not at the timeout
    assert agent.handled == 2
    (dead,) = worker.client.xrange(f"{PREFIX}:planner:dead")
    assert b"failed 2 deliveries" in dead[1][b"why"]


class Slow(Counting):
    def handle(self, message):
        time.sleep(1.5)
        return super().handle(message)


def test_a_slow_but_alive_worker_keeps_its_request(redis_url):
    stop = threading.Event()
    slow, other = Slow(), Counting()
    serve_in_thread(Worker("planner", slow, redis_url, name="slow", claim_after_s=0.3), stop)
    bus = RedisBus(redis_url, timeout_s=10)
    time.sleep(0.2)
    reply = threading.Thread(target=lambda: bus.request("planner", REQUEST), daemon=True)
    reply.start()
    time.sleep(0.5)  # the slow worker has it now; a second worker starts looking for idle requests
    serve_in_thread(Worker("planner", other, redis_url, name="other", claim_after_s=0.3), stop)
    reply.join(10)
    stop.set()
    assert (slow.handled, other.handled) == (1, 0)


def test_a_malformed_entry_is_dead_lettered_and_the_worker_goes_on(redis_url):
    agent = Counting()
    worker = Worker("planner", agent, redis_url)
    worker.client.xadd(f"{PREFIX}:planner", {"junk": "1"})
    bus = RedisBus(redis_url, timeout_s=5)
    stop = threading.Event()
    serve_in_thread(worker, stop)
    assert bus.request("planner", REQUEST).tasks[0].hypothesis == "reply to step 0"
    stop.set()
    (dead,) = worker.client.xrange(f"{PREFIX}:planner:dead")
    assert b"not a request" in dead[1][b"why"]


def test_a_bad_bus_url_is_one_line():
    with pytest.raises(DSAssistError, match="not a Redis URL"):
        RedisBus("redis://127.0.0.1:notaport/0")


def _message() -> str:
    from dsassist.bus.redis import _encode

    return _encode(REQUEST)


@pytest.mark.slow
def test_a_run_with_workers_as_processes_equals_the_in_process_run(redis_url, tmp_path, example):
    def start(role: str) -> subprocess.Popen:
        command = [sys.executable, "-m", "dsassist", "worker", "--role", role, "--bus", redis_url]
        return subprocess.Popen([*command, "--claim-after", "1"], stdout=subprocess.DEVNULL)

    workers = {role: start(role) for role in ("planner", "coder", "evaluator", "reflector")}
    options = ["--target", "species", "--max-steps", "12", "--seed", "0", "--store", "none", "--budget", "3m"]
    data = str(example("penguins"))
    try:
        run = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dsassist",
                "run",
                data,
                *options,
                "--out",
                str(tmp_path / "bus"),
                "--bus",
                redis_url,
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        # kill the coder worker once a few steps are recorded; a new one takes over its request
        while _steps(tmp_path / "bus") < 4 and run.poll() is None:
            time.sleep(0.05)
        workers["coder"].kill()
        workers["coder"].wait()
        workers["coder"] = start("coder")
        assert run.wait(240) == 0, run.stderr.read()
        local = subprocess.run(
            [sys.executable, "-m", "dsassist", "run", data, *options, "--out", str(tmp_path / "local")],
            capture_output=True,
            text=True,
        )
        assert local.returncode == 0, local.stderr
    finally:
        for process in workers.values():
            process.kill()
    query = "SELECT id, parent_id, template_id, verdict, score FROM steps ORDER BY id"
    assert _rows(tmp_path / "bus", query) == _rows(tmp_path / "local", query)  # none lost, none twice


def _steps(out: Path) -> int:
    try:
        return _rows(out, "SELECT count(*) FROM steps")[0][0]
    except (sqlite3.Error, IndexError):
        return 0


def _rows(out: Path, query: str) -> list[tuple]:
    with sqlite3.connect(out / "provenance.db", timeout=1) as c:
        return c.execute(query).fetchall()
