"""Agents as services: requests and replies over Redis Streams.

Each role has a request stream (`dsassist:ROLE`) read by a consumer group of workers
(`dsassist worker --role ROLE`). The controller's `RedisBus.request` adds a request that
names its reply stream and correlation id, and waits for the reply. Delivery is at least
once: a worker acknowledges a request only after its reply is sent; a request left pending by
a crashed worker is claimed by another after `claim_after_s` (XAUTOCLAIM); a request that
has failed `max_deliveries` times goes to the dead-letter stream (`dsassist:ROLE:dead`).
Handling is idempotent: a reply is kept by request id for a while, so a redelivered request
is answered again with the same reply and is never handled twice; the controller takes the
first reply per correlation id and ignores the rest.
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from dsassist import messages
from dsassist.bus.inprocess import Agent
from dsassist.errors import DSAssistError

PREFIX = "dsassist"
GROUP = "workers"
REPLY_TTL_S = 3600  # how long a worker remembers a reply, for redeliveries
MAX_LEN = 10_000  # entries kept per stream (about: Redis trims whole blocks)


@functools.cache
def message_types() -> dict[str, type[BaseModel]]:
    """Every message the bus may carry, by class name."""
    return {
        name: cls
        for name, cls in vars(messages).items()
        if isinstance(cls, type) and issubclass(cls, BaseModel) and cls.__module__ == messages.__name__
    }


def _encode(message: BaseModel) -> str:
    return f"{type(message).__name__} {message.model_dump_json()}"


def _decode(text: str | bytes) -> BaseModel:
    name, _, body = (text.decode() if isinstance(text, bytes) else text).partition(" ")
    return message_types()[name].model_validate_json(body)


def redis_errors() -> type[Exception]:
    import redis

    return redis.RedisError


def _connect(url: str) -> Any:
    try:
        import redis
    except ModuleNotFoundError:
        raise DSAssistError("the Redis bus needs its client: pip install 'dsassist[services]'") from None
    where = url.split("@")[-1]
    try:
        client = redis.Redis.from_url(url)
        client.ping()
    except ValueError as exc:
        raise DSAssistError(f"bus {where}: not a Redis URL ({exc})") from None
    except redis.RedisError as exc:
        raise DSAssistError(f"Redis at {where} does not answer: {exc}") from None
    return client


class RedisBus:
    """The controller's side: one request, one correlated reply, or a clear timeout."""

    def __init__(self, url: str, timeout_s: float = 600.0) -> None:
        self.url, self.timeout_s = url, timeout_s
        self.client = _connect(url)
        self.replies = f"{PREFIX}:replies:{uuid.uuid4().hex}"
        self.last_reply = "0-0"

    def request(self, role: str, message: BaseModel) -> BaseModel:
        correlation = uuid.uuid4().hex
        fields = {"id": correlation, "reply_to": self.replies, "message": _encode(message)}
        self.client.xadd(f"{PREFIX}:{role}", fields, maxlen=MAX_LEN, approximate=True)
        deadline = time.monotonic() + self.timeout_s
        while (left := deadline - time.monotonic()) > 0:
            block_ms = max(1, int(min(left, 1.0) * 1000))
            for _, entries in self.client.xread({self.replies: self.last_reply}, block=block_ms) or []:
                for entry_id, data in entries:
                    self.last_reply = entry_id
                    if data[b"id"].decode() == correlation:  # earlier duplicates are skipped
                        if b"error" in data:
                            raise DSAssistError(f"the {role} worker failed: {data[b'error'].decode()}")
                        return _decode(data[b"message"])
        raise DSAssistError(
            f"no {role} worker answered within {self.timeout_s:.0f}s "
            f"(is `dsassist worker --role {role} --bus ...` running?)"
        )

    def close(self) -> None:
        self.client.delete(self.replies)
        self.client.close()


class Worker:
    """One agent serving one role: reads its group's requests, replies, acknowledges.

    A fresh request costs two round trips to Redis: the read, and one pipeline that keeps the
    reply, sends it and acknowledges the request. Redeliveries (requests claimed from a
    crashed worker) are checked against the kept replies and the delivery count first.
    """

    def __init__(
        self,
        role: str,
        agent: Agent,
        url: str,
        name: str | None = None,
        claim_after_s: float = 30.0,
        max_deliveries: int = 3,
    ) -> None:
        self.role, self.agent = role, agent
        self.client = _connect(url)
        self.stream, self.dead = f"{PREFIX}:{role}", f"{PREFIX}:{role}:dead"
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self.claim_after_s = claim_after_s
        self.max_deliveries = max_deliveries
        self.current: bytes | None = None  # the request being handled, kept claimed by the heartbeat
        self.next_claim = 0.0
        try:
            self.client.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except Exception as exc:  # BUSYGROUP: another worker made it first
            if "BUSYGROUP" not in str(exc):
                raise
        threading.Thread(target=self._heartbeat, daemon=True).start()

    def serve(self, stop: Callable[[], bool] = lambda: False) -> None:
        while not stop():
            try:
                self.serve_once()
            except redis_errors() as exc:  # a Redis hiccup: say so, wait, go on
                print(f"{self.role} worker: {exc}; retrying", file=sys.stderr, flush=True)
                time.sleep(1.0)

    def serve_once(self, block_ms: int = 1000) -> int:
        """Claim what crashed consumers left (now and then), then read new requests; returns
        how many were handled."""
        claimed = []
        if time.monotonic() >= self.next_claim:
            self.next_claim = time.monotonic() + self.claim_after_s / 2
            idle_ms = int(self.claim_after_s * 1000)
            _, claimed, _ = self.client.xautoclaim(self.stream, GROUP, self.name, idle_ms, "0-0", count=10)
        fresh = self.client.xreadgroup(GROUP, self.name, {self.stream: ">"}, count=1, block=block_ms) or []
        for entry_id, data in claimed:
            self._handle(entry_id, data, redelivered=True)
        for _, batch in fresh:
            for entry_id, data in batch:
                self._handle(entry_id, data, redelivered=False)
        return len(claimed) + sum(len(batch) for _, batch in fresh)

    def _handle(self, entry_id: bytes, data: dict[bytes, bytes], redelivered: bool) -> None:
        if not data:  # the entry was trimmed from the stream
            self.client.xack(self.stream, GROUP, entry_id)
            return
        try:
            request_id, reply_to = data[b"id"].decode(), data[b"reply_to"].decode()
        except (KeyError, UnicodeDecodeError):
            self._bury(entry_id, data, "not a request: no id or reply_to")
            return
        cache = f"{PREFIX}:reply:{request_id}"
        reply = self.client.get(cache) if redelivered else None
        if redelivered and reply is None:
            delivered = self.client.xpending_range(self.stream, GROUP, entry_id, entry_id, 1)
            if delivered and delivered[0]["times_delivered"] > self.max_deliveries:
                self._bury(entry_id, data, f"failed {self.max_deliveries} deliveries")
                return
        if reply is None:
            try:
                self.current = entry_id
                reply = _encode(self.agent.handle(_decode(data[b"message"])))
            except Exception as exc:  # a poison request: left pending, redelivered, buried
                error = {"id": request_id, "error": repr(exc)[:2000]}
                self.client.xadd(f"{PREFIX}:{self.role}:errors", error, maxlen=MAX_LEN, approximate=True)
                return
            finally:
                self.current = None
        pipe = self.client.pipeline(transaction=False)
        pipe.set(cache, reply, ex=REPLY_TTL_S)  # kept first: a crash after it still answers the redelivery
        self._reply(pipe, reply_to, {"id": request_id, "message": reply})
        pipe.xack(self.stream, GROUP, entry_id)
        self._execute(pipe)

    def _heartbeat(self) -> None:
        """Claim the request being handled again now and then: its idle time stays short, so no
        other worker takes over a request that is slow but alive."""
        while True:
            time.sleep(self.claim_after_s / 3)
            current = self.current
            if current is not None:
                with contextlib.suppress(Exception):  # Redis away: serve() reports it
                    self.client.xclaim(self.stream, GROUP, self.name, 0, [current], justid=True)

    @staticmethod
    def _reply(pipe: Any, stream: str, fields: dict[Any, Any]) -> None:
        pipe.xadd(stream, fields)
        pipe.expire(stream, REPLY_TTL_S)  # a controller that is gone leaves nothing behind

    @staticmethod
    def _execute(pipe: Any) -> None:
        results = pipe.execute(raise_on_error=False)
        for result in results:  # a reply_to that is not a stream only loses that reply
            if isinstance(result, Exception) and "WRONGTYPE" not in str(result):
                raise result

    def _bury(self, entry_id: bytes, data: dict[bytes, bytes], why: str) -> None:
        """Dead-letter the request and tell the caller, so that it fails at once, not at its timeout."""
        pipe = self.client.pipeline(transaction=False)
        pipe.xadd(self.dead, {**data, b"why": why.encode()}, maxlen=MAX_LEN, approximate=True)
        if b"id" in data and b"reply_to" in data:
            error = f"request moved to {self.dead}: {why}"
            self._reply(pipe, data[b"reply_to"].decode(), {"id": data[b"id"], "error": error})
        pipe.xack(self.stream, GROUP, entry_id)
        self._execute(pipe)
