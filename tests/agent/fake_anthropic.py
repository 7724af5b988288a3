"""Fakes of the Anthropic Messages API for tests: nothing here reaches the network.

Two ways in, both driving the real SDK:

- ``mock_client(script)``: an ``anthropic.Anthropic`` on an ``httpx2.MockTransport`` that
  answers from a ``Script`` (the usual way; ``respx`` does not intercept the 2.x SDK).
- ``FakeMessagesAPI(replies)``: a real HTTP server on ``127.0.0.1`` in a thread, for whatever
  builds its own client (``ANTHROPIC_BASE_URL``), a Celery worker included::

      api = FakeMessagesAPI([message(tool_use("get_ticket", {"ticket_id": 1}))])
      with api as base_url:
          settings.ANTHROPIC_BASE_URL = base_url
          ...
      assert api.requests[0].body["model"] == "claude-haiku-4-5"

Both serve their replies in order and record what they were sent. ``FaultyResponder`` answers
a share of the calls with the faults a real API has (429, 529, timeouts, dropped connections,
malformed bodies) and counts what it served; ``benchmarks/chaos.py`` runs a worker against it.
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anthropic
import httpx2

MODEL = "claude-haiku-4-5"


# --- reply bodies ----------------------------------------------------------------------------


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def tool_use(name: str, input: Any, *, id: str = "toolu_1") -> dict[str, Any]:
    return {"type": "tool_use", "id": id, "name": name, "input": input}


def message(
    *content: dict[str, Any],
    stop_reason: str = "tool_use",
    input_tokens: int = 656,
    output_tokens: int = 74,
    cache_read_tokens: int | None = 0,
    cache_write_tokens: int | None = 0,
    model: str = MODEL,
) -> dict[str, Any]:
    """A Messages API reply body."""
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": list(content),
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cache_creation_input_tokens": cache_write_tokens,
            "cache_read_input_tokens": cache_read_tokens,
        },
    }


def error_body(kind: str, text: str) -> dict[str, Any]:
    """An API error body, e.g. ``error_body("rate_limit_error", "slow down")``."""
    return {"type": "error", "error": {"type": kind, "message": text}}


# --- the mock transport ----------------------------------------------------------------------

# A scripted answer: a body (200 JSON), a whole response, an exception to raise (an instance or
# an ``httpx2`` exception class, raised with the request), or a function of the request.
Answer = (
    dict[str, Any]
    | httpx2.Response
    | BaseException
    | type[BaseException]
    | Callable[[httpx2.Request], httpx2.Response]
)


@dataclass
class Script:
    """Answers requests in order and records them. Once out of answers, it answers a 400
    (``EXHAUSTED``), as ``FakeMessagesAPI`` does: the SDK would turn a raised exception into
    a connection error, which looks transient and gets retried."""

    answers: list[Answer]
    requests: list[httpx2.Request] = field(default_factory=list)

    @property
    def bodies(self) -> list[Any]:
        return [json.loads(request.content) for request in self.requests]

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        if len(self.requests) > len(self.answers):
            return httpx2.Response(EXHAUSTED.status, json=EXHAUSTED.body)
        answer = self.answers[len(self.requests) - 1]
        if isinstance(answer, type) and issubclass(answer, httpx2.RequestError):
            raise answer("scripted failure", request=request)
        if isinstance(answer, BaseException | type):
            raise answer
        if isinstance(answer, httpx2.Response):
            return answer
        if callable(answer):
            return answer(request)
        return httpx2.Response(200, json=answer)


def mock_client(script: Script | Iterable[Answer], *, timeout: float = 60.0) -> anthropic.Anthropic:
    """The real SDK client, answering from ``script`` (SDK retries off, as in production)."""
    handler = script if isinstance(script, Script) else Script(list(script))
    return anthropic.Anthropic(
        api_key="test-key",
        base_url="http://fake.local",
        max_retries=0,
        timeout=timeout,
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
    )


# --- the local HTTP server -------------------------------------------------------------------


@dataclass(frozen=True)
class FakeReply:
    """One scripted HTTP answer. ``body`` is sent as JSON unless it is ``str`` or ``bytes``
    (sent as is, to fake a broken reply); ``delay`` seconds pass first (to fake a timeout);
    ``drop`` closes the connection without any answer."""

    body: dict[str, Any] | str | bytes
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any  # the parsed JSON body


# What the server answers once its script is done: a permanent error, so that a run stops at
# once with a message that says why.
EXHAUSTED = FakeReply(
    error_body("invalid_request_error", "fake Messages API: no scripted reply left"), status=400
)


Responder = Callable[[RecordedRequest], "FakeReply | dict[str, Any]"]


class FakeMessagesAPI:
    """A local fake of ``POST /v1/messages``, served from a thread on ``127.0.0.1:<free port>``.

    Entering it starts the server and gives its base URL; leaving it stops the server. Replies
    (``FakeReply`` or a bare reply body) are served in order, from any thread or process that
    can reach the port, then ``then`` (by default ``EXHAUSTED``; a responder answers every
    further call); ``requests`` records what was received.
    """

    def __init__(
        self,
        replies: Iterable[FakeReply | dict[str, Any] | Responder],
        *,
        then: FakeReply | Responder = EXHAUSTED,
    ) -> None:
        self.replies = [
            r if isinstance(r, FakeReply) or callable(r) else FakeReply(r) for r in replies
        ]
        self.then = then
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake Messages API is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> str:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fake-messages-api", daemon=True
        )
        self._thread.start()
        return self.base_url

    def __exit__(self, *exc_info: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def _next_reply(self, request: RecordedRequest) -> FakeReply:
        with self._lock:
            self.requests.append(request)
            index = len(self.requests) - 1
            reply = self.replies[index] if index < len(self.replies) else self.then
        if callable(reply):  # answers from what was asked, e.g. the ticket id under triage
            answer = reply(request)
            return answer if isinstance(answer, FakeReply) else FakeReply(answer)
        return reply

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                if self.path.split("?")[0] != "/v1/messages":
                    self._send(FakeReply(error_body("not_found_error", self.path), status=404))
                    return
                headers = {name.lower(): value for name, value in self.headers.items()}
                self._send(api._next_reply(RecordedRequest("POST", self.path, headers, body)))

            def _send(self, reply: FakeReply) -> None:
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.drop:  # the client sees the connection close with no answer
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if isinstance(reply.body, bytes | str):
                    payload = reply.body.encode() if isinstance(reply.body, str) else reply.body
                else:
                    payload = json.dumps(reply.body).encode()
                self.send_response(reply.status)
                headers = {"content-type": "application/json", **reply.headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                # The client may have given up (a timeout test): then there is no one to tell.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

        return Handler


# --- a conversation, and faults --------------------------------------------------------------


def ticket_under_triage(request: RecordedRequest) -> int:
    """The ticket a request is about: the workflow's first context call names it."""
    context_call = request.body["messages"][1]["content"][0]
    return int(context_call["input"]["ticket_id"])


def submit_triage_reply(request: RecordedRequest) -> dict[str, Any]:
    """Classifies the ticket the request is about (one turn, ``submit_triage``)."""
    return message(
        tool_use(
            "submit_triage",
            {
                "ticket_id": ticket_under_triage(request),
                "category": "billing",
                "urgency": "high",
                "confidence": "high",
                "reason": "Double charge, like #1.",
                "draft_note": "Check the payment log and refund the duplicate.",
            },
            id="toolu_submit",
        ),
        input_tokens=1200,
        output_tokens=90,
        cache_read_tokens=3000,
        cache_write_tokens=0,
    )


def triage_conversation(request: RecordedRequest) -> dict[str, Any]:
    """Two turns per ticket: first look up the billing templates, then, once their result is
    in the conversation, ``submit_triage``. Answers from the conversation alone, so a retried
    call gets the same answer."""
    last = request.body["messages"][-1]["content"]
    answered = any(
        isinstance(block, dict) and block.get("tool_use_id") == "toolu_templates" for block in last
    )
    if answered:
        return submit_triage_reply(request)
    return message(
        tool_use("list_reply_templates", {"category": "billing"}, id="toolu_templates"),
        input_tokens=1100,
        output_tokens=40,
        cache_read_tokens=3000,
        cache_write_tokens=0,
    )


FAULTS = ("rate_limited", "overloaded", "timeout", "dropped", "not_json", "broken_json", "empty")


def fault_reply(kind: str, *, timeout_delay: float) -> FakeReply:
    """The API misbehaving in one of the ways of ``FAULTS``."""
    if kind == "rate_limited":
        wait = {"retry-after-ms": "200"}
        return FakeReply(error_body("rate_limit_error", "slow down"), status=429, headers=wait)
    if kind == "overloaded":
        return FakeReply(error_body("overloaded_error", "Overloaded"), status=529)
    if kind == "timeout":  # a good answer, later than the client waits
        return FakeReply(message(text("too late")), delay=timeout_delay)
    if kind == "dropped":
        return FakeReply(b"", drop=True)
    if kind == "not_json":
        return FakeReply("<html>Bad gateway</html>", headers={"content-type": "text/html"})
    if kind == "broken_json":
        return FakeReply('{"id": "msg_1", "type": "message", "content": [')
    if kind == "empty":  # valid JSON, no content and no usage
        return FakeReply({"id": "msg_1", "type": "message", "role": "assistant"})
    raise ValueError(f"unknown fault {kind!r}")


class FaultyResponder:
    """Answers a seeded ``rate`` of the calls with a fault from ``kinds`` (chosen in turn at
    random), the others with ``answer``. Thread-safe. ``served`` counts each kind it served
    (``ok`` for good answers), and ``usage`` sums the tokens of the good answers: what a
    client that records usage correctly must have recorded."""

    def __init__(
        self,
        answer: Callable[[RecordedRequest], dict[str, Any]],
        *,
        rate: float,
        seed: int = 0,
        timeout_delay: float = 3.0,
        kinds: Iterable[str] = FAULTS,
    ) -> None:
        self.answer, self.rate, self.timeout_delay = answer, rate, timeout_delay
        self.kinds = list(kinds)
        self.served: Counter[str] = Counter()
        self.usage = {
            "input_tokens": 0,
            "output_tokens": 0,
            "cache_read_tokens": 0,
            "cache_write_tokens": 0,
        }
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def __call__(self, request: RecordedRequest) -> FakeReply:
        with self._lock:
            faulty = self._random.random() < self.rate
            kind = self._random.choice(self.kinds) if faulty else "ok"
        if kind != "ok":
            with self._lock:
                self.served[kind] += 1
            return fault_reply(kind, timeout_delay=self.timeout_delay)
        body = self.answer(request)
        usage = body["usage"]
        with self._lock:
            self.served["ok"] += 1
            self.usage["input_tokens"] += usage["input_tokens"]
            self.usage["output_tokens"] += usage["output_tokens"]
            self.usage["cache_read_tokens"] += usage["cache_read_input_tokens"] or 0
            self.usage["cache_write_tokens"] += usage["cache_creation_input_tokens"] or 0
        return FakeReply(body)
