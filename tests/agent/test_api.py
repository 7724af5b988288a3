"""Agent endpoints: tickets with their latest proposal, the proposal queue, runs with traces."""

import re

import pytest
from rest_framework.test import APIClient

from agent.models import TriageProposal
from agent.services import triage_ticket_run
from tickets.models import Ticket

pytestmark = pytest.mark.django_db


@pytest.fixture
def proposal(new_ticket: Ticket) -> TriageProposal:
    result = triage_ticket_run(ticket_id=new_ticket.pk)
    assert result is not None
    return result


def test_ticket_detail_shows_the_latest_proposal(reviewer_api: APIClient, proposal) -> None:  # type: ignore[no-untyped-def]
    body = reviewer_api.get(f"/api/tickets/{proposal.ticket_id}/").json()

    latest = body["latest_proposal"]
    assert latest["id"] == proposal.pk
    assert latest["outcome"] == "proposal"
    assert latest["category"] == "billing"
    assert latest["status"] == "pending"
    assert body["status"] == "awaiting_review"


def test_ticket_list_includes_latest_proposal_without_n_plus_one(
    reviewer_api: APIClient,
    proposal,
    django_assert_max_num_queries,  # type: ignore[no-untyped-def]
) -> None:
    with django_assert_max_num_queries(8):
        results = reviewer_api.get("/api/tickets/").json()["results"]

    by_id = {row["id"]: row for row in results}
    assert by_id[proposal.ticket_id]["latest_proposal"]["id"] == proposal.pk
    assert all(row["latest_proposal"] is None for row in results if row["id"] != proposal.ticket_id)


def test_ingest_answer_includes_the_proposal_in_eager_mode(
    intake_api: APIClient,
    history,  # type: ignore[no-untyped-def]
) -> None:
    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=True):
        response = intake_api.post(
            "/api/tickets/",
            {
                "subject": "Invoice charged twice",
                "body": "Refund one of the two charges.",
                "requester_email": "a@example.com",
            },
        )

    assert response.status_code == 201
    assert TriageProposal.objects.filter(ticket_id=response.json()["id"]).exists()


def test_proposal_queue_filters_by_status(reviewer_api: APIClient, proposal) -> None:  # type: ignore[no-untyped-def]
    pending = reviewer_api.get("/api/proposals/?status=pending").json()
    approved = reviewer_api.get("/api/proposals/?status=approved").json()
    invalid = reviewer_api.get("/api/proposals/?status=bogus")
    empty = reviewer_api.get("/api/proposals/?status=")  # not "any status": say which

    assert [row["id"] for row in pending["results"]] == [proposal.pk]
    assert approved["results"] == []
    assert (invalid.status_code, empty.status_code) == (400, 400)
    assert "status" in invalid.json()


def test_run_detail_has_the_ordered_trace(reviewer_api: APIClient, proposal) -> None:  # type: ignore[no-untyped-def]
    body = reviewer_api.get(f"/api/runs/{proposal.run_id}/").json()

    assert body["outcome"] == "proposal"
    assert body["backend"] == "offline"
    positions = [step["position"] for step in body["steps"]]
    assert positions == sorted(positions)
    assert positions[0] == 1
    assert body["steps"][-1]["kind"] == "output"
    assert {"policy_decision", "context_source", "model_request", "tool_call"} <= {
        step["kind"] for step in body["steps"]
    }


def test_runs_and_proposals_need_permission(db, proposal) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import token_client
    from tests.factories import UserFactory

    outsider = token_client(UserFactory())

    assert outsider.get(f"/api/runs/{proposal.run_id}/").status_code == 403
    assert outsider.get("/api/proposals/").status_code == 403
    assert APIClient().get(f"/api/runs/{proposal.run_id}/").status_code == 401


def test_openapi_schema_and_docs_are_served_locally(reviewer_api: APIClient) -> None:
    schema = reviewer_api.get("/api/schema/")
    docs = reviewer_api.get("/api/docs/")

    assert schema.status_code == 200
    assert b"/api/proposals/" in schema.content
    assert docs.status_code == 200
    assert b"cdn" not in docs.content.lower()
    assert b"/static/drf_spectacular_sidecar/" in docs.content
    html = docs.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert assets
    assert all(url.startswith("/") and not url.startswith("//") for url in assets)
    # Swagger UI's start-up script is a file of its own (the Content-Security-Policy runs no
    # inline script), with no badge image from validator.swagger.io.
    assert "<script>" not in html
    script = reviewer_api.get("/api/docs/?script=")
    assert script["Content-Type"].startswith("application/javascript")
    assert '"validatorUrl": null' in script.content.decode()
    # ReDoc is gone (its bundle loads its logo from a CDN); its address leads to the docs.
    redoc = reviewer_api.get("/api/redoc/")
    assert (redoc.status_code, redoc["Location"]) == (302, "/api/docs/")
    for path in ("/api/schema/", "/api/docs/"):  # not for the public
        assert APIClient().get(path).status_code == 401, path


@pytest.mark.parametrize(
    ("role", "status", "sees_proposal"),
    [
        ("anonymous", 401, None),
        ("no group", 403, None),
        ("Ticket intake", 200, False),
        ("Support reviewers", 200, True),
        ("Triage admins", 200, True),
        ("superuser", 200, True),
    ],
)
def test_who_reads_a_ticket_and_its_proposal(
    role: str, status: int, sees_proposal, proposal
) -> None:  # type: ignore[no-untyped-def]
    """The ticket representation, field by field, per role: an integration that posts tickets
    reads the ticket back, never the proposal (drafts, reasoning, reviewers, other customers'
    similar tickets), on the detail, the list and the ingest answer alike."""
    from django.contrib.auth.models import Group

    from tests.conftest import token_client
    from tests.factories import UserFactory

    client = APIClient()
    if role != "anonymous":
        user = UserFactory(is_superuser=role == "superuser", is_staff=role == "superuser")
        if role not in {"no group", "superuser"}:
            user.groups.add(Group.objects.get(name=role))
        client = token_client(user)

    detail = client.get(f"/api/tickets/{proposal.ticket_id}/")
    listed = client.get("/api/tickets/")

    assert detail.status_code == listed.status_code == status
    if status != 200:
        return
    body = detail.json()
    assert set(body) == {
        "id", "external_id", "subject", "body", "requester_email", "channel", "status",
        "category", "urgency", "created_at", "updated_at", "latest_proposal",
    }  # fmt: skip
    row = next(r for r in listed.json()["results"] if r["id"] == proposal.ticket_id)
    if sees_proposal:
        assert body["latest_proposal"]["id"] == proposal.pk
        assert row["latest_proposal"]["draft_note"] == proposal.draft_note
    else:
        assert body["latest_proposal"] is None
        assert row["latest_proposal"] is None
        assert proposal.draft_note not in detail.content.decode()


def test_responses_match_the_openapi_schema_nulls_and_blanks_included(
    reviewer_api: APIClient, proposal, new_ticket: Ticket
) -> None:
    """The schema describes what the API returns: an untriaged ticket (no category, blank
    urgency), a clarification (no category, blank urgency and confidence), a pending proposal
    (no reviewer), trace steps without an actor, and the documented 404 of ?page=0."""
    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    from agent.services import triage_ticket_run
    from tests.agent.scripted import ScriptedBackend, tool_use, turn
    from tests.factories import TicketFactory

    unclear = TicketFactory(subject="hello?", body="")
    ask = {"ticket_id": unclear.pk, "question": "What happened?", "missing": ["details"]}
    triage_ticket_run(
        ticket_id=unclear.pk, backend=ScriptedBackend(turn(tool_use("request_clarification", ask)))
    )
    untriaged = TicketFactory(subject="Not triaged yet")
    schema = reviewer_api.get("/api/schema/?format=json").json()
    contents = _json_schema(schema)
    registry = Registry().with_resource(
        "urn:api", Resource.from_contents(contents, default_specification=DRAFT202012)
    )

    def check(body: object, component: str) -> None:
        reference = {"$ref": f"urn:api#/components/schemas/{component}"}
        jsonschema.Draft202012Validator(reference, registry=registry).validate(body)

    for ticket in (untriaged, unclear, new_ticket):
        check(reviewer_api.get(f"/api/tickets/{ticket.pk}/").json(), "TicketWithProposal")
    check(reviewer_api.get("/api/proposals/").json(), "PaginatedProposalList")
    check(reviewer_api.get(f"/api/runs/{proposal.run_id}/").json(), "Run")
    page_zero = reviewer_api.get("/api/proposals/?page=0")
    assert page_zero.status_code == 404
    assert "404" in schema["paths"]["/api/proposals/"]["get"]["responses"]


def _json_schema(value: object) -> object:
    """OpenAPI 3.0's ``nullable: true`` as JSON Schema's ``null`` type, so that a JSON Schema
    validator reads the document as OpenAPI means it."""
    if isinstance(value, list):
        return [_json_schema(item) for item in value]
    if not isinstance(value, dict):
        return value
    converted = {key: _json_schema(item) for key, item in value.items() if key != "nullable"}
    if value.get("nullable"):
        if "type" in converted:
            converted["type"] = [converted["type"], "null"]
        else:
            converted = {"anyOf": [converted, {"type": "null"}]}
    return converted
