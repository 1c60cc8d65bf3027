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
import json
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from pydantic import BaseModel

from dsassist import messages
from dsassist.bus.inprocess import Agent
from dsassist.errors import DSAssistError

PREFIX = "dsassist"
GROUP = "workers"
REPLY_TTL_S = 3600  # how long a worker remembers a reply, for redeliveries
MAX_LEN = 10_000  # entries kept per stream (about: Redis trims whole blocks)


def message_types() -> dict[str, type[BaseModel]]:
    """Every message the bus may carry, by class name."""
    return {
        name: cls
        for name, cls in vars(messages).items()
        if isinstance(cls, type) and issubclass(cls, BaseModel) and cls.__module__ == messages.__name__
    }


def _encode(message: BaseModel) -> str:
    return json.dumps({"type": type(message).__name__, "body": message.model_dump(mode="json")})


def _decode(text: str | bytes) -> BaseModel:
    data = json.loads(text)
    return message_types()[data["type"]].model_validate(data["body"])


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
    """One agent serving one role: reads its group's requests, replies, acknowledges."""

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
        self.claim_after_ms = int(claim_after_s * 1000)
        self.max_deliveries = max_deliveries
        try:
            self.client.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except Exception as exc:  # BUSYGROUP: another worker made it first
            if "BUSYGROUP" not in str(exc):
                raise

    def serve(self, stop: Callable[[], bool] = lambda: False) -> None:
        while not stop():
            try:
                self.serve_once()
            except redis_errors() as exc:  # a Redis hiccup: say so, wait, go on
                print(f"{self.role} worker: {exc}; retrying", file=sys.stderr, flush=True)
                time.sleep(1.0)

    def serve_once(self, block_ms: int = 1000) -> int:
        """Claim what crashed consumers left, then read new requests; returns how many were handled."""
        _, claimed, _ = self.client.xautoclaim(
            self.stream, GROUP, self.name, self.claim_after_ms, start_id="0-0", count=10
        )
        fresh = self.client.xreadgroup(GROUP, self.name, {self.stream: ">"}, count=1, block=block_ms) or []
        entries = list(claimed) + [entry for _, batch in fresh for entry in batch]
        for entry_id, data in entries:
            self._handle(entry_id, data)
        return len(entries)

    def _handle(self, entry_id: bytes, data: dict[bytes, bytes]) -> None:
        if not data:  # the entry was trimmed from the stream
            self.client.xack(self.stream, GROUP, entry_id)
            return
        try:
            request_id, reply_to = data[b"id"].decode(), data[b"reply_to"].decode()
        except (KeyError, UnicodeDecodeError):
            self._bury(entry_id, data, "not a request: no id or reply_to")
            return
        cache = f"{PREFIX}:reply:{request_id}"
        reply = self.client.get(cache)
        if reply is None:
            delivered = self.client.xpending_range(self.stream, GROUP, entry_id, entry_id, 1)
            if delivered and delivered[0]["times_delivered"] > self.max_deliveries:
                self._bury(entry_id, data, f"failed {self.max_deliveries} deliveries")
                return
            try:
                with self._holding(entry_id):
                    reply = _encode(self.agent.handle(_decode(data[b"message"])))
            except Exception as exc:  # a poison request: left pending, redelivered, buried
                error = {"id": request_id, "error": repr(exc)[:2000]}
                self.client.xadd(f"{PREFIX}:{self.role}:errors", error, maxlen=MAX_LEN, approximate=True)
                return
            self.client.set(cache, reply, ex=REPLY_TTL_S)
        self._reply(reply_to, {"id": request_id, "message": reply})
        self.client.xack(self.stream, GROUP, entry_id)

    @contextlib.contextmanager
    def _holding(self, entry_id: bytes) -> Iterator[None]:
        """While a request is handled, claim it again now and then: its idle time stays short,
        so no other worker takes over a request that is slow but alive."""
        done = threading.Event()

        def heartbeat() -> None:
            while not done.wait(self.claim_after_ms / 3000):
                self.client.xclaim(self.stream, GROUP, self.name, 0, [entry_id], justid=True)

        beating = threading.Thread(target=heartbeat, daemon=True)
        beating.start()
        try:
            yield
        finally:
            done.set()
            beating.join()

    def _reply(self, stream: str, fields: dict[Any, Any]) -> None:
        try:
            self.client.xadd(stream, fields)
            self.client.expire(stream, REPLY_TTL_S)  # a controller that is gone leaves nothing behind
        except redis_errors() as exc:  # a reply_to that is not a stream
            if "WRONGTYPE" not in str(exc):
                raise

    def _bury(self, entry_id: bytes, data: dict[bytes, bytes], why: str) -> None:
        """Dead-letter the request and tell the caller, so that it fails at once, not at its timeout."""
        self.client.xadd(self.dead, {**data, b"why": why.encode()}, maxlen=MAX_LEN, approximate=True)
        if b"id" in data and b"reply_to" in data:
            error = f"request moved to {self.dead}: {why}"
            self._reply(data[b"reply_to"].decode(), {"id": data[b"id"], "error": error})
        self.client.xack(self.stream, GROUP, entry_id)
