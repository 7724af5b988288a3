"""Tests for agent.engine.backends.anthropic: the real SDK against a fake transport or a local
fake Messages API. What is sent, how the reply is read, and how every failure is classified."""

import copy
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Literal

import httpx2
import pytest
from pydantic import BaseModel, ConfigDict, Field

from agent.engine.backends.anthropic import (
    AnthropicBackend,
    anthropic_backend_from_settings,
    strict_input_schema,
)
from agent.engine.backends.base import (
    MalformedReplyError,
    ModelError,
    ModelRequest,
    PermanentModelError,
    TransientModelError,
    Usage,
)
from agent.engine.tools import Risk, Tool, ToolInput, ToolOutput
from tests.agent.fake_anthropic import (
    FAULTS,
    MODEL,
    FakeMessagesAPI,
    FakeReply,
    FaultyResponder,
    Script,
    error_body,
    fault_reply,
    message,
    mock_client,
    text,
    tool_use,
)

# --- tools and requests ----------------------------------------------------------------------


class GetTicketInput(ToolInput):
    ticket_id: int = Field(ge=1, description="The ticket under triage.")


class Reason(BaseModel):
    model_config = ConfigDict(extra="forbid")

    summary: str = Field(max_length=200)
    confidence: float = Field(ge=0, le=1)


class SubmitInput(ToolInput):
    ticket_id: int
    category: Literal["billing", "bug", "account"]
    urgency: Literal["low", "normal", "high"] = "normal"
    note: str | None = None
    tags: list[str] = Field(default_factory=list, max_length=3)
    reason: Reason


class FreeFormInput(ToolInput):
    labels: dict[str, str]


class Done(ToolOutput):
    ok: bool = True


def make_tool(name: str, input_model: type[ToolInput], description: str) -> Tool:
    return Tool(
        name=name,
        description=description,
        input_model=input_model,
        output_model=Done,
        risk=Risk.READ,
        handler=lambda ctx, arguments: Done(),
    )


GET_TICKET = make_tool("get_ticket", GetTicketInput, "Reads the ticket under triage.")
SUBMIT = make_tool("submit_triage", SubmitInput, "Submits the triage proposal.")

# The loop's shape: opening text, the assistant's parallel tool calls, then a user turn that
# begins with one tool_result per tool_use id, in the same order.
CONVERSATION = [
    {"role": "user", "content": [{"type": "text", "text": "<ticket>Refund please</ticket>"}]},
    {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Reading it."},
            {"type": "tool_use", "id": "toolu_a", "name": "get_ticket", "input": {"ticket_id": 7}},
            {"type": "tool_use", "id": "toolu_b", "name": "get_ticket", "input": {"ticket_id": 8}},
        ],
    },
    {
        "role": "user",
        "content": [
            {
                "type": "tool_result",
                "tool_use_id": "toolu_a",
                "content": '{"id": 7}',
                "is_error": False,
            },
            {
                "type": "tool_result",
                "tool_use_id": "toolu_b",
                "content": "Refused by policy: not the ticket under triage",
                "is_error": True,
            },
            {
                "type": "text",
                "text": "Finish by calling exactly one of these tools: submit_triage.",
            },
        ],
    },
]


def make_request(**overrides) -> ModelRequest:
    fields = {
        "system": "You triage support tickets.",
        "static_context": "Categories: billing, bug, account.",
        "tools": [GET_TICKET, SUBMIT],
        "messages": copy.deepcopy(CONVERSATION),
        "max_tokens": 512,
        "timeout": 30.0,
    }
    return ModelRequest(**{**fields, **overrides})


def backend_for(*answers, timeout: float = 60.0) -> tuple[AnthropicBackend, Script]:
    script = Script(list(answers))
    return AnthropicBackend(client=mock_client(script, timeout=timeout), model=MODEL), script


OK = message(tool_use("get_ticket", {"ticket_id": 7}))

# --- the request -----------------------------------------------------------------------------


def test_request_body_is_exactly_the_cached_prefix_strict_tools_and_the_conversation():
    backend, script = backend_for(OK)
    request = make_request()

    backend.complete(request)

    [sent] = script.requests
    assert (sent.method, sent.url.path) == ("POST", "/v1/messages")
    assert script.bodies == [
        {
            "model": MODEL,
            "max_tokens": 512,
            "system": [
                {"type": "text", "text": "You triage support tickets."},
                {
                    "type": "text",
                    "text": "Categories: billing, bug, account.",
                    "cache_control": {"type": "ephemeral"},
                },
            ],
            "tools": [
                {
                    "name": "get_ticket",
                    "description": "Reads the ticket under triage.",
                    "input_schema": {
                        "type": "object",
                        "properties": {
                            "ticket_id": {
                                "type": "integer",
                                "title": "Ticket Id",
                                "description": "The ticket under triage.\n\n{minimum: 1}",
                            }
                        },
                        "additionalProperties": False,
                        "required": ["ticket_id"],
                    },
                    "strict": True,
                },
                {
                    "name": "submit_triage",
                    "description": "Submits the triage proposal.",
                    "input_schema": strict_input_schema(SUBMIT.input_schema()),
                    "strict": True,
                },
            ],
            "tool_choice": {"type": "any"},
            "messages": CONVERSATION,
        }
    ]
    assert request.messages == CONVERSATION  # passed through, not rewritten


def test_tool_results_follow_the_tool_use_turn_in_the_order_of_its_ids():
    backend, script = backend_for(OK)

    backend.complete(make_request())

    messages = script.bodies[0]["messages"]
    tool_use_ids = [b["id"] for b in messages[1]["content"] if b["type"] == "tool_use"]
    following = messages[2]["content"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert [b["type"] for b in following[: len(tool_use_ids)]] == ["tool_result"] * 2
    assert [b["tool_use_id"] for b in following[: len(tool_use_ids)]] == tool_use_ids


def test_without_static_context_the_cache_marker_goes_on_the_system_prompt():
    backend, script = backend_for(OK)

    backend.complete(make_request(static_context=""))

    assert script.bodies[0]["system"] == [
        {
            "type": "text",
            "text": "You triage support tickets.",
            "cache_control": {"type": "ephemeral"},
        }
    ]


def test_call_timeout_is_the_runs_remaining_time_capped_by_the_per_call_timeout():
    backend, script = backend_for(OK, OK, timeout=20.0)

    backend.complete(make_request(timeout=5.0))
    backend.complete(make_request(timeout=90.0))

    assert [r.extensions["timeout"]["read"] for r in script.requests] == [5.0, 20.0]


def test_strict_schema_closes_every_object_and_moves_unenforceable_keywords_to_descriptions():
    # Every object gets additionalProperties: false; $defs/$ref stay; optional fields stay
    # optional (strict tool use does not require every property); minimum, maximum, maxLength,
    # maxItems and default are not enforced by the API, so the model reads them in the
    # description and the policy's pydantic validation enforces them.
    assert strict_input_schema(SUBMIT.input_schema()) == {
        "$defs": {
            "Reason": {
                "type": "object",
                "title": "Reason",
                "properties": {
                    "summary": {
                        "type": "string",
                        "title": "Summary",
                        "description": "{maxLength: 200}",
                    },
                    "confidence": {
                        "type": "number",
                        "title": "Confidence",
                        "description": "{maximum: 1, minimum: 0}",
                    },
                },
                "additionalProperties": False,
                "required": ["summary", "confidence"],
            }
        },
        "type": "object",
        "properties": {
            "ticket_id": {"type": "integer", "title": "Ticket Id"},
            "category": {"enum": ["billing", "bug", "account"], "title": "Category"},
            "urgency": {
                "enum": ["low", "normal", "high"],
                "title": "Urgency",
                "description": "{default: normal}",
            },
            "note": {
                "anyOf": [{"type": "string"}, {"type": "null"}],
                "title": "Note",
                "description": "{default: None}",
            },
            "tags": {
                "type": "array",
                "title": "Tags",
                "items": {"type": "string"},
                "description": "{maxItems: 3}",
            },
            "reason": {"$ref": "#/$defs/Reason"},
        },
        "additionalProperties": False,
        "required": ["ticket_id", "category", "reason"],
    }


def test_strict_schema_refuses_free_form_objects():
    with pytest.raises(ValueError, match=r"#/properties/labels"):
        strict_input_schema(FreeFormInput.model_json_schema())


def test_a_tool_without_a_strict_schema_is_a_permanent_error_and_nothing_is_sent():
    backend, script = backend_for(OK)
    free_form = make_tool("label", FreeFormInput, "Labels a ticket.")

    with pytest.raises(PermanentModelError, match="tool label"):
        backend.complete(make_request(tools=[GET_TICKET, free_form]))

    assert script.requests == []


# --- the reply -------------------------------------------------------------------------------


def test_reply_with_text_and_tool_use_becomes_a_turn_with_tokens_and_latency():
    def slow(request):
        time.sleep(0.03)
        return httpx2.Response(
            200,
            json=message(
                text("Looks like billing."),
                tool_use("submit_triage", {"ticket_id": 7, "category": "billing"}, id="toolu_9"),
                input_tokens=1200,
                output_tokens=80,
                cache_read_tokens=4100,
                cache_write_tokens=300,
                model="claude-haiku-4-5-20251001",
            ),
        )

    backend, _ = backend_for(slow)

    turn = backend.complete(make_request())

    assert turn.content == [
        {"type": "text", "text": "Looks like billing."},
        {
            "type": "tool_use",
            "id": "toolu_9",
            "name": "submit_triage",
            "input": {"ticket_id": 7, "category": "billing"},
        },
    ]
    assert turn.stop_reason == "tool_use"
    assert turn.usage == Usage(
        input_tokens=1200, output_tokens=80, cache_read_tokens=4100, cache_write_tokens=300
    )
    assert turn.model == "claude-haiku-4-5-20251001"
    assert 30 <= turn.latency_ms < 5_000
    assert [call.name for call in turn.tool_calls] == ["submit_triage"]


@pytest.mark.parametrize("stop_reason", ["refusal", "end_turn", "max_tokens"])
def test_stop_reason_is_preserved(stop_reason):
    backend, _ = backend_for(message(text("I can't help with that."), stop_reason=stop_reason))

    turn = backend.complete(make_request())

    assert turn.stop_reason == stop_reason
    assert turn.content == [{"type": "text", "text": "I can't help with that."}]
    assert turn.tool_calls == []


def test_absent_cache_token_counts_are_zero():
    backend, _ = backend_for(message(text("ok"), cache_read_tokens=None, cache_write_tokens=None))

    turn = backend.complete(make_request())

    assert turn.usage == Usage(input_tokens=656, output_tokens=74)


# --- failures --------------------------------------------------------------------------------


def status(code: int, kind: str = "api_error", headers: dict[str, str] | None = None):
    return httpx2.Response(code, json=error_body(kind, f"fake {code}"), headers=headers)


def raw(body: str, content_type: str = "application/json") -> httpx2.Response:
    return httpx2.Response(200, text=body, headers={"content-type": content_type})


def with_content(*blocks) -> dict:
    return {**message(), "content": list(blocks)}


FAILURES = {
    # transient: the loop retries, waiting retry_after when the server gave one
    "429 with retry-after": (
        status(429, "rate_limit_error", {"retry-after": "7"}),
        TransientModelError,
    ),
    "529 overloaded": (status(529, "overloaded_error"), TransientModelError),
    "500": (status(500), TransientModelError),
    "502 html page": (httpx2.Response(502, text="<html>Bad gateway</html>"), TransientModelError),
    "503": (status(503), TransientModelError),
    "504": (status(504), TransientModelError),
    "408": (status(408), TransientModelError),
    "409": (status(409), TransientModelError),
    "read timeout": (httpx2.ReadTimeout, TransientModelError),
    "connect timeout": (httpx2.ConnectTimeout, TransientModelError),
    "connection refused": (httpx2.ConnectError, TransientModelError),
    "connection dropped": (httpx2.RemoteProtocolError, TransientModelError),
    # permanent: retrying cannot help
    "400": (status(400, "invalid_request_error"), PermanentModelError),
    "401": (status(401, "authentication_error"), PermanentModelError),
    "403": (status(403, "permission_error"), PermanentModelError),
    "404": (status(404, "not_found_error"), PermanentModelError),
    "413": (status(413, "request_too_large"), PermanentModelError),
    "422": (status(422), PermanentModelError),
    # malformed: a bounded retry in the loop, then a safe stop
    "200 non-JSON body": (raw("upstream says hi", "text/plain"), MalformedReplyError),
    "200 html claiming JSON": (raw("<html>oops</html>"), MalformedReplyError),
    "200 broken JSON": (raw('{"id": "msg_1", "content": [{"ty'), MalformedReplyError),
    "200 JSON array": (httpx2.Response(200, json=[1, 2]), MalformedReplyError),
    "200 content missing": ({k: v for k, v in OK.items() if k != "content"}, MalformedReplyError),
    "200 fields missing": ({"id": "msg_1", "type": "message"}, MalformedReplyError),
    "200 content not a list": ({**OK, "content": "get_ticket(7)"}, MalformedReplyError),
    "200 usage missing": ({**OK, "usage": None}, MalformedReplyError),
    "200 tokens not numbers": (
        {**OK, "usage": {"input_tokens": "5", "output_tokens": 1}},
        MalformedReplyError,
    ),
    "tool_use without id": (
        with_content({"type": "tool_use", "name": "get_ticket", "input": {}}),
        MalformedReplyError,
    ),
    "tool_use without name": (
        with_content({"type": "tool_use", "id": "toolu_1", "input": {}}),
        MalformedReplyError,
    ),
    "tool_use input a string": (
        with_content(tool_use("get_ticket", '{"ticket_id": 7}')),
        MalformedReplyError,
    ),
    "tool_use input a list": (with_content(tool_use("get_ticket", [7])), MalformedReplyError),
    "tool_use input missing": (
        with_content({"type": "tool_use", "id": "t", "name": "x"}),
        MalformedReplyError,
    ),
    "text block without text": (with_content({"type": "text"}), MalformedReplyError),
    "unknown block type": (with_content({"type": "mystery", "data": 1}), MalformedReplyError),
}


@pytest.mark.parametrize(("answer", "expected"), FAILURES.values(), ids=FAILURES.keys())
def test_every_failure_maps_to_its_model_error_class(answer, expected):
    backend, script = backend_for(answer)

    with pytest.raises(ModelError) as caught:
        backend.complete(make_request())

    assert type(caught.value) is expected
    assert len(script.requests) == 1  # the SDK does not retry on its own


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "2.5"}, 2.5),
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        ({"retry-after": "3600"}, 60.0),
        ({"retry-after-ms": "900000"}, 60.0),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "-3"}, None),
        ({"retry-after": "nan"}, None),
        ({}, None),
    ],
)
def test_retry_after_comes_from_the_headers_capped_at_a_minute(headers, expected):
    backend, _ = backend_for(status(429, "rate_limit_error", headers))

    with pytest.raises(TransientModelError) as caught:
        backend.complete(make_request())

    assert caught.value.retry_after == expected


def test_retry_after_may_be_an_http_date():
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    backend, _ = backend_for(status(503, headers={"retry-after": when}))

    with pytest.raises(TransientModelError) as caught:
        backend.complete(make_request())

    assert 25 <= caught.value.retry_after <= 30


def test_error_messages_say_what_happened():
    backend, _ = backend_for(
        status(529, "overloaded_error"), httpx2.ReadTimeout, status(401, "authentication_error")
    )
    messages = []
    for _ in range(3):
        with pytest.raises(ModelError) as caught:
            backend.complete(make_request())
        messages.append(str(caught.value))

    assert messages == [
        "overloaded (HTTP 529, OverloadedError): fake 529",
        "request timed out (ReadTimeout)",
        "request refused (HTTP 401, AuthenticationError): fake 401",
    ]


def test_a_malformed_reply_names_the_problem_but_not_the_model_output():
    backend, _ = backend_for(with_content(tool_use("get_ticket", "card 4111 1111 1111 1111")))

    with pytest.raises(MalformedReplyError) as caught:
        backend.complete(make_request())

    assert "content.0.tool_use.input" in str(caught.value)
    assert "4111" not in str(caught.value)


# --- through a real HTTP server, configured from settings -------------------------------------


@pytest.fixture
def claude_settings(settings):
    settings.ANTHROPIC_API_KEY = "test-key"
    settings.TRIAGE_MODEL = "claude-test-model"
    settings.TRIAGE_MODEL_TIMEOUT_SECONDS = 0.5
    return settings


def test_backend_from_settings_round_trips_through_a_local_messages_api(claude_settings):
    api = FakeMessagesAPI(
        [
            message(
                text("Reading."),
                tool_use("get_ticket", {"ticket_id": 7}),
                model="claude-test-model",
                cache_write_tokens=4096,
            ),
            FakeReply(
                error_body("overloaded_error", "busy"), status=529, headers={"retry-after": "2"}
            ),
        ]
    )
    with api as base_url:
        claude_settings.ANTHROPIC_BASE_URL = base_url
        backend = anthropic_backend_from_settings()
        turn = backend.complete(make_request())
        with pytest.raises(TransientModelError) as caught:
            backend.complete(make_request())

    assert (backend.name, backend.model) == ("anthropic", "claude-test-model")
    assert turn.tool_calls[0].input == {"ticket_id": 7}
    assert turn.usage.cache_write_tokens == 4096
    assert caught.value.retry_after == 2.0
    # Exactly one request per call: SDK retries are off, the loop owns retries.
    assert len(api.requests) == 2
    first = api.requests[0]
    assert (first.method, first.path) == ("POST", "/v1/messages")
    assert first.headers["authorization"] == "Bearer test-key"
    assert first.body["model"] == "claude-test-model"
    assert first.body["messages"] == CONVERSATION
    assert first.body["system"][-1]["cache_control"] == {"type": "ephemeral"}


def test_backend_from_settings_times_out_a_hung_call(claude_settings):
    api = FakeMessagesAPI([FakeReply(message(text("late")), delay=2.0)])
    with api as base_url:
        claude_settings.ANTHROPIC_BASE_URL = base_url
        backend = anthropic_backend_from_settings()
        started = time.monotonic()
        with pytest.raises(TransientModelError, match="timed out"):
            backend.complete(make_request(timeout=30.0))

    assert time.monotonic() - started < 1.5  # TRIAGE_MODEL_TIMEOUT_SECONDS, not the run's 30 s


def test_a_fake_api_with_no_reply_left_answers_a_permanent_error(claude_settings):
    with FakeMessagesAPI([]) as base_url:
        claude_settings.ANTHROPIC_BASE_URL = base_url
        with pytest.raises(PermanentModelError, match="no scripted reply left"):
            anthropic_backend_from_settings().complete(make_request())


# --- the faults the chaos run injects (benchmarks/chaos.py, api-faults) ------------------------


@pytest.mark.parametrize(
    ("kind", "error", "match"),
    [
        ("rate_limited", TransientModelError, "rate limited"),
        ("overloaded", TransientModelError, "overloaded"),
        ("timeout", TransientModelError, "timed out"),
        ("dropped", TransientModelError, "connection failed"),
        ("not_json", MalformedReplyError, "not a message"),
        ("broken_json", MalformedReplyError, "not valid JSON"),
        ("empty", MalformedReplyError, "not a well-formed message"),
    ],
)
def test_each_fault_of_the_chaos_api_is_an_error_the_loop_bounds(
    kind, error, match, claude_settings
):
    """Through a real socket and the real SDK: every fault is one the loop retries (transient)
    or counts (malformed), never an SDK exception or a half-read turn."""
    with FakeMessagesAPI([fault_reply(kind, timeout_delay=1.0)]) as base_url:
        claude_settings.ANTHROPIC_BASE_URL = base_url
        with pytest.raises(error, match=match):
            anthropic_backend_from_settings().complete(make_request())


def test_the_faulty_responder_counts_what_it_served():
    good = message(tool_use("get_ticket", {"ticket_id": 7}), input_tokens=10, output_tokens=2)
    faulty = FaultyResponder(lambda request: good, rate=0.3, seed=4, kinds=["overloaded"])

    replies = [faulty(None) for _ in range(200)]  # type: ignore[arg-type]

    statuses = [reply.status for reply in replies]
    assert set(statuses) == {200, 529}
    assert faulty.served == {"ok": statuses.count(200), "overloaded": statuses.count(529)}
    assert 40 <= faulty.served["overloaded"] <= 80  # about 30 % of 200
    assert faulty.usage["input_tokens"] == 10 * faulty.served["ok"]
    assert faulty.usage["output_tokens"] == 2 * faulty.served["ok"]
    assert set(FAULTS) >= {"rate_limited", "overloaded", "timeout", "dropped"}
