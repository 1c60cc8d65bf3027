"""A local OpenAI- and Anthropic-compatible HTTP server with scripted replies, for tests.

Replies are queued per model name; when a model's queue is empty a default responder answers
by role (read from the system prompt), so that a whole run can go through. Faults are replies
too: an HTTP status, a delay longer than the client's timeout, a refusal.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    text: str = ""
    status: int = 200
    delay_s: float = 0.0
    refusal: bool = False
    retry_after_s: float | None = None
    usage: bool = True  # False: no usage in the reply, as some servers do
    tokens_out: int | None = None  # report this many output tokens, whatever max_tokens says
    raw: str | None = None  # send this body as it is (not the API's JSON)


@dataclass
class Request:
    api: str  # openai or anthropic
    model: str
    role: str  # planner, coder, fixer, evaluator, reflector (from the system prompt)
    system: str
    messages: list[dict[str, Any]]
    headers: dict[str, str]

    @property
    def last_user(self) -> str:
        return next(m["content"] for m in reversed(self.messages) if m["role"] == "user")


def tokens(text: str) -> int:
    return max(1, math.ceil(len(text.encode()) / 4))


@dataclass
class ScriptedLLM:
    responder: Callable[[Request], Reply] | None = None
    script: dict[str, deque[Reply]] = field(default_factory=lambda: defaultdict(deque))
    requests: list[Request] = field(default_factory=list)

    def add(self, model: str, *replies: Reply | str) -> None:
        self.script[model].extend(r if isinstance(r, Reply) else Reply(r) for r in replies)

    def calls(self, role: str | None = None) -> list[Request]:
        return [r for r in self.requests if role is None or r.role == role]

    def __enter__(self) -> ScriptedLLM:
        llm = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                api = "anthropic" if self.path.endswith("/messages") else "openai"
                request = _request(api, body, dict(self.headers))
                llm.requests.append(request)
                queue = llm.script.get(request.model)
                if queue:
                    reply = queue.popleft()
                elif llm.responder is not None:
                    reply = llm.responder(request)
                else:
                    reply = Reply(status=500, text="no scripted reply")
                time.sleep(reply.delay_s)
                self._send(reply, api, request)

            def _send(self, reply: Reply, api: str, request: Request) -> None:
                data = (
                    reply.raw.encode()
                    if reply.raw is not None
                    else json.dumps(_body(reply, api, request)).encode()
                )
                try:
                    self.send_response(reply.status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    if reply.retry_after_s is not None:
                        self.send_header("retry-after", str(reply.retry_after_s))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out first
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def openai_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/v1"

    @property
    def anthropic_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"


def _request(api: str, body: dict[str, Any], headers: dict[str, str]) -> Request:
    messages = body["messages"]
    if api == "openai":
        system = next((m["content"] for m in messages if m["role"] == "system"), "")
        messages = [m for m in messages if m["role"] != "system"]
    else:
        system = body.get("system", "")
    match = re.search(r"Role: (\w+)", system)
    role = match.group(1) if match else "?"
    return Request(api, body["model"], role, system, messages, {k.lower(): v for k, v in headers.items()})


def _body(reply: Reply, api: str, request: Request) -> dict[str, Any]:
    if reply.status != 200:
        kind = "rate_limit_error" if reply.status == 429 else "api_error"
        error = {"message": reply.text or f"status {reply.status}", "type": kind}
        return {"type": "error", "error": error} if api == "anthropic" else {"error": error}
    tokens_in = tokens(request.system + "".join(m["content"] for m in request.messages))
    tokens_out = reply.tokens_out if reply.tokens_out is not None else tokens(reply.text)
    if api == "anthropic":
        return {
            "id": "msg_01scripted",
            "type": "message",
            "role": "assistant",
            "model": request.model,
            "content": [{"type": "text", "text": reply.text}],
            "stop_reason": "refusal" if reply.refusal else "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": tokens_in, "output_tokens": tokens_out} if reply.usage else None,
        }
    message = {"role": "assistant", "content": None if reply.refusal else reply.text}
    message["refusal"] = reply.text if reply.refusal else None
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.model,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}],
        "usage": {
            "prompt_tokens": tokens_in,
            "completion_tokens": tokens_out,
            "total_tokens": tokens_in + tokens_out,
        }
        if reply.usage
        else None,
    }
