"""The ticket API: ingest, idempotency, validation, limits, auth, pagination."""

import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from tests.conftest import token_client
from tests.factories import TicketFactory
from tickets.models import Ticket

pytestmark = pytest.mark.django_db

VALID = {
    "subject": "Cannot log in",
    "body": "Since this morning the login page says my password is wrong.",
    "requester_email": "ana@example.com",
    "external_id": "zendesk-1001",
    "channel": "email",
}


def test_ingest_creates_ticket_and_returns_it(intake_api: APIClient) -> None:
    response = intake_api.post("/api/tickets/", VALID)

    assert response.status_code == 201
    ticket = Ticket.objects.get()
    assert response.json() == {
        "id": ticket.pk,
        "external_id": "zendesk-1001",
        "subject": "Cannot log in",
        "body": VALID["body"],
        "requester_email": "ana@example.com",
        "channel": "email",
        "status": ticket.status,
        "category": None,
        "urgency": "",
        "created_at": response.json()["created_at"],
        "updated_at": response.json()["updated_at"],
        "latest_proposal": None,  # triage runs after commit; this test's transaction never commits
    }


def test_ingest_defaults_channel_and_allows_missing_external_id(intake_api: APIClient) -> None:
    payload = {key: VALID[key] for key in ("subject", "body", "requester_email")}

    first = intake_api.post("/api/tickets/", payload)
    second = intake_api.post("/api/tickets/", payload)

    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["channel"] == "api"
    assert Ticket.objects.filter(external_id=None).count() == 2


def test_same_external_id_returns_existing_ticket(intake_api: APIClient) -> None:
    first = intake_api.post("/api/tickets/", VALID)
    again = intake_api.post("/api/tickets/", VALID)  # a retry

    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert Ticket.objects.count() == 1


def test_a_known_external_id_with_different_content_is_a_409(intake_api: APIClient) -> None:
    """Another ticket under a reused id is not silently answered with the old one."""
    first = intake_api.post("/api/tickets/", VALID)
    other = intake_api.post("/api/tickets/", {**VALID, "subject": "A different subject"})

    assert other.status_code == 409
    assert other.json() == {
        "detail": "A ticket with this external_id exists with different subject; nothing was "
        "changed.",
        "id": first.json()["id"],
        "differs": ["subject"],
    }
    assert Ticket.objects.get().subject == "Cannot log in"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_posts_with_same_external_id_create_one_ticket(intake_user) -> None:  # type: ignore[no-untyped-def]
    """Eight clients post the same external_id at once: one 201, seven 200, one row."""
    assert connection.vendor == "postgresql"
    barrier = threading.Barrier(8)
    statuses: list[int] = []
    ids: set[int] = set()

    def post() -> None:
        client = token_client(intake_user)
        barrier.wait()
        response = client.post("/api/tickets/", {**VALID, "external_id": "race-1"})
        statuses.append(response.status_code)
        ids.add(response.json()["id"] if response.status_code < 300 else repr(response.json()))
        connection.close()

    threads = [threading.Thread(target=post) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [200] * 7 + [201]
    assert len(ids) == 1
    assert Ticket.objects.filter(external_id="race-1").count() == 1


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        ({"subject": ""}, {"subject": ["This field may not be blank."]}),
        (
            {"subject": "x" * 301},
            {"subject": ["Ensure this field has no more than 300 characters."]},
        ),
        (
            {"body": "x" * 50_001},
            {"body": ["Ensure this field has no more than 50000 characters."]},
        ),
        (
            {"requester_email": "not-an-email"},
            {"requester_email": ["Enter a valid email address."]},
        ),
        ({"channel": "fax"}, {"channel": ['"fax" is not a valid choice.']}),
        # A number is not text: DRF would store 42 as "42" (found by schemathesis).
        (
            {"external_id": 42, "body": 7},
            {"external_id": ["Not a valid string."], "body": ["Not a valid string."]},
        ),
        # A misspelt field is named, not dropped.
        ({"requestor_email": "a@example.com"}, {"requestor_email": ["Unknown field."]}),
        (
            {"subject": None, "requester_email": None},
            {
                "subject": ["This field may not be null."],
                "requester_email": ["This field may not be null."],
            },
        ),
    ],
)
def test_invalid_fields_are_rejected_with_messages_and_nothing_stored(
    intake_api: APIClient, changes: dict, errors: dict
) -> None:
    response = intake_api.post("/api/tickets/", {**VALID, **changes})

    assert response.status_code == 400
    assert response.json() == errors
    assert not Ticket.objects.exists()


def test_missing_required_fields_are_named(intake_api: APIClient) -> None:
    response = intake_api.post("/api/tickets/", {})

    assert response.status_code == 400
    assert response.json() == {
        "subject": ["This field is required."],
        "requester_email": ["This field is required."],
    }


def test_malformed_json_is_a_400(intake_api: APIClient) -> None:
    response = intake_api.post("/api/tickets/", "{not json", content_type="application/json")

    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]
    assert not Ticket.objects.exists()


def test_oversized_body_is_a_413_and_nothing_stored(intake_api: APIClient) -> None:
    response = intake_api.post(
        "/api/tickets/", {**VALID, "body": "x" * (1024 * 1024)}, format="json"
    )

    assert response.status_code == 413
    assert response.json() == {"detail": "Request body too large: the limit is 1048576 bytes."}
    assert not Ticket.objects.exists()


@pytest.mark.parametrize("method", ["get", "post"])
def test_no_credentials_is_401(api: APIClient, method: str) -> None:
    response = getattr(api, method)("/api/tickets/", VALID)

    assert response.status_code == 401
    assert not Ticket.objects.filter(external_id=VALID["external_id"]).exists()


def test_bad_token_is_401(api: APIClient) -> None:
    api.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")

    assert api.get("/api/tickets/").status_code == 401


def test_reviewer_may_read_but_not_ingest(reviewer_api: APIClient) -> None:
    TicketFactory()

    assert reviewer_api.get("/api/tickets/").status_code == 200
    response = reviewer_api.post("/api/tickets/", VALID)
    assert response.status_code == 403
    assert Ticket.objects.count() == 1


def test_user_without_role_gets_403(db) -> None:  # type: ignore[no-untyped-def]
    from tests.factories import UserFactory

    client = token_client(UserFactory())

    assert client.get("/api/tickets/").status_code == 403
    assert client.post("/api/tickets/", VALID).status_code == 403
    assert not Ticket.objects.exists()


def test_session_auth_requires_csrf(intake_user) -> None:  # type: ignore[no-untyped-def]
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(intake_user)

    response = client.post("/api/tickets/", VALID)

    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert not Ticket.objects.exists()


def test_list_is_paginated_newest_first(admin_api: APIClient) -> None:
    tickets = TicketFactory.create_batch(55)

    page1 = admin_api.get("/api/tickets/").json()
    page2 = admin_api.get("/api/tickets/?page=2").json()

    assert page1["count"] == 55
    assert len(page1["results"]) == 50
    assert page1["results"][0]["id"] == tickets[-1].pk
    assert len(page2["results"]) == 5
    assert page2["next"] is None


@pytest.mark.parametrize("page", ["", "0", "x", "3"])
def test_a_page_that_is_not_a_page_is_a_404(admin_api: APIClient, page: str) -> None:
    """An empty ``?page=`` is refused like ``?page=x``, not read as the first page."""
    TicketFactory.create_batch(2)

    assert admin_api.get(f"/api/tickets/?page={page}").status_code == 404
    assert admin_api.get("/api/tickets/?page=1").status_code == 200


def test_detail_and_404(admin_api: APIClient) -> None:
    ticket = TicketFactory()

    assert admin_api.get(f"/api/tickets/{ticket.pk}/").json()["subject"] == ticket.subject
    assert admin_api.get("/api/tickets/999999/").status_code == 404


def test_ingest_is_throttled(intake_api: APIClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from rest_framework.throttling import ScopedRateThrottle

    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"ingest": "3/minute"})
    statuses = [
        intake_api.post("/api/tickets/", {**VALID, "external_id": f"t-{n}"}).status_code
        for n in range(4)
    ]

    assert statuses == [201, 201, 201, 429]
    assert Ticket.objects.count() == 3
    # Reads are not throttled.
    assert intake_api.get("/api/tickets/").status_code == 200


def test_a_broker_error_after_the_ingest_committed_still_answers_201(
    intake_api: APIClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    django_capture_on_commit_callbacks,  # type: ignore[no-untyped-def]
) -> None:
    """The ticket is stored; the broker's failure is logged and counted, and the sweeper
    requeues it. A 500 here would make the client retry and, without an external_id, store
    the ticket twice."""
    from kombu.exceptions import OperationalError

    from agent.services import enqueue_failures
    from agent.tasks import triage_ticket

    def broker_down(*args: object, **kwargs: object) -> None:
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(triage_ticket, "delay", broker_down)
    body = {key: value for key, value in VALID.items() if key != "external_id"}

    with django_capture_on_commit_callbacks(execute=True):
        response = intake_api.post("/api/tickets/", body)

    assert response.status_code == 201
    ticket = Ticket.objects.get()
    assert ticket.status == Ticket.Status.QUEUED  # the sweeper's to recover
    assert enqueue_failures() == 1
    assert f"could not enqueue ticket {ticket.pk}" in caplog.text


def test_a_cache_that_fails_too_loses_no_ticket_and_no_request(
    intake_api: APIClient,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks,  # type: ignore[no-untyped-def]
) -> None:
    """With Redis down, the broker and the cache fail together: the ingest still answers 201,
    the count is reported as unknown rather than as zero."""
    from django.core.cache import cache

    from agent.services import enqueue_failures
    from agent.tasks import triage_ticket

    def down(*args: object, **kwargs: object) -> None:
        raise ConnectionError("Connection refused")

    monkeypatch.setattr(triage_ticket, "delay", down)
    for method in ("add", "incr", "get"):
        monkeypatch.setattr(cache, method, down)
    body = {key: value for key, value in VALID.items() if key != "external_id"}

    with django_capture_on_commit_callbacks(execute=True):
        response = intake_api.post("/api/tickets/", body)

    assert response.status_code == 201
    assert Ticket.objects.get().status == Ticket.Status.QUEUED
    assert enqueue_failures() is None
