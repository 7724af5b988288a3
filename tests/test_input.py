"""Bad input at the API's one parser (``triage/parsers.py``) and in the stored text rule
(``triage/validation.py``): a clear 4xx with the field named, and nothing stored."""

import io

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings
from rest_framework.exceptions import ParseError
from rest_framework.test import APIClient

from tests.factories import TicketFactory
from tickets.models import Ticket
from tickets.services import ticket_ingest
from triage.parsers import RequestTooLarge, SafeJSONParser, json_depth

pytestmark = pytest.mark.django_db

VALID = {"subject": "Cannot log in", "body": "Password rejected.", "requester_email": "a@b.co"}


def _post(api: APIClient, raw: str | bytes, content_type: str = "application/json"):  # type: ignore[no-untyped-def]
    return api.post("/api/tickets/", raw, content_type=content_type)


def test_json_nested_thousands_deep_is_a_400(intake_api: APIClient) -> None:
    nested = "[" * 5000 + "]" * 5000  # about 10 KB; json.loads would exhaust the recursion

    response = _post(intake_api, '{"subject": "x", "body": ' + nested + "}")

    assert response.status_code == 400
    assert response.json() == {"detail": "JSON nested deeper than 32 levels."}
    assert not Ticket.objects.exists()


def test_depth_ignores_brackets_inside_strings() -> None:
    assert json_depth(b'{"a": "[[[[{{{{", "b": [1, {"c": "]]]"}]}', stop_after=32) == 3
    assert json_depth(b'{"a": "\\"[[["}', stop_after=32) == 1  # an escaped quote


@pytest.mark.parametrize(
    ("field", "value", "code_point"),
    [
        ("subject", "Invoice\x00 wrong", "0000"),
        ("body", "Open txt\u202eexe.pdf", "202E"),
        ("body", "bell \x07 here", "0007"),
        ("external_id", "crm-\u2066-1", "2066"),
    ],
)
def test_control_characters_are_refused_field_by_field(
    intake_api: APIClient, field: str, value: str, code_point: str
) -> None:
    response = intake_api.post("/api/tickets/", {**VALID, field: value}, format="json")

    assert response.status_code == 400
    assert response.json() == {
        field: [f"Contains the control character U+{code_point}, which is not allowed."]
    }
    assert not Ticket.objects.exists()


def test_a_lone_surrogate_is_refused(intake_api: APIClient) -> None:
    response = _post(intake_api, '{"subject": "x\\ud800", "requester_email": "a@b.co"}')

    assert response.status_code == 400
    assert list(response.json()) == ["subject"]
    assert not Ticket.objects.exists()


def test_ordinary_text_with_tabs_newlines_and_other_scripts_is_stored(
    intake_api: APIClient,
) -> None:
    body = "Línea 1\n\tZeile 2 — ligne 3: 請求書 🙂 (zero\u200bwidth stays, the agent reads it)"

    response = intake_api.post("/api/tickets/", {**VALID, "body": body}, format="json")

    assert response.status_code == 201
    assert Ticket.objects.get().body == body


def test_other_content_types_are_a_415(intake_api: APIClient) -> None:
    response = _post(
        intake_api, "subject=x&requester_email=a%40b.co", "application/x-www-form-urlencoded"
    )

    assert response.status_code == 415
    assert not Ticket.objects.exists()


@override_settings(API_MAX_BODY_BYTES=80)
def test_a_body_without_a_declared_length_is_bounded_too() -> None:
    """A chunked request declares no length, so the middleware cannot see its size; the parser
    reads no more than the limit."""
    with pytest.raises(RequestTooLarge):
        SafeJSONParser().parse(io.BytesIO(b'{"body": "' + b"x" * 100 + b'"}'))
    with pytest.raises(ParseError):
        SafeJSONParser().parse(io.BytesIO(b"[" * 32 + b"[]" + b"]" * 32))  # 33 deep, 66 B
    assert SafeJSONParser().parse(io.BytesIO(b'{"body": "short"}')) == {"body": "short"}


def test_services_refuse_the_same_text(db) -> None:  # type: ignore[no-untyped-def]
    """The rule is on the model too, so a ticket that arrives another way is held to it."""
    with pytest.raises(ValidationError) as raised:
        ticket_ingest(subject="ok", body="right-to-left \u202e override", requester_email="a@b.co")

    assert "body" in raised.value.message_dict
    assert not Ticket.objects.exists()
    TicketFactory()  # the factory's own text passes


def test_a_control_character_in_a_key_is_refused(intake_api: APIClient) -> None:
    response = intake_api.post("/api/tickets/", {**VALID, "note\u202e": "x"}, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "non_field_errors": ["A key: Contains the control character U+202E, which is not allowed."]
    }
    assert not Ticket.objects.exists()
