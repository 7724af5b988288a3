"""The authorisation matrix: each role (anonymous, staff in no group, Ticket intake, Support
reviewers, Triage admins, superuser) against every admin action (every ``actions`` entry of
every registered ModelAdmin, Django's delete included, every custom admin view, the review
page's buttons, the kill switch) and every API write. An allowed role's request does what it
says; any other is refused (a login redirect, a 401 or a 403, or, for a list action the role
is not offered, the list again saying no action was selected) and **nothing is stored**: every
row of every table is the same afterwards. A test checks that the matrix names every action
and custom view the admin has, so a new one fails here until it has a row."""

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Group
from django.contrib.messages import get_messages
from django.contrib.sessions.models import Session
from django.db.models import Model
from django.http import HttpResponse
from django.test import Client, RequestFactory
from rest_framework.test import APIClient

from agent.engine.backends.base import PermanentModelError
from agent.models import TriageProposal
from agent.review import proposal_approve
from agent.selectors import agent_settings_get
from agent.services import triage_ticket_run
from evaluations.models import EvaluationExample, EvaluationRun
from tests.agent.scripted import ScriptedBackend, submit
from tests.conftest import token_client
from tests.factories import (
    CategoryFactory,
    ReplyTemplateFactory,
    TicketFactory,
    TicketNoteFactory,
    UserFactory,
)
from tickets.models import Category, ReplyTemplate, Ticket, TicketNote
from tickets.roles import SUPPORT_REVIEWERS, TICKET_INTAKE, TRIAGE_ADMINS

pytestmark = pytest.mark.django_db

ANONYMOUS, NO_GROUP, SUPERUSER = "anonymous", "no group", "superuser"
ROLES = [ANONYMOUS, NO_GROUP, TICKET_INTAKE, SUPPORT_REVIEWERS, TRIAGE_ADMINS, SUPERUSER]
REVIEWING = frozenset({SUPPORT_REVIEWERS, TRIAGE_ADMINS, SUPERUSER})
ADMINS = frozenset({TRIAGE_ADMINS, SUPERUSER})
ONLY_SUPERUSER = frozenset({SUPERUSER})


@dataclass
class World:
    """What the actions act on, made the way the application makes it."""

    pending: TriageProposal  # high confidence, awaiting review
    approved: TriageProposal  # approved, so it can be undone
    stopped: Ticket  # a safe stop: in manual triage, may be sent back to the agent
    billing: Category
    runs: tuple[EvaluationRun, EvaluationRun]
    spare: dict[str, Model]  # one object per model that nothing else needs, to delete


def _world() -> World:
    billing = CategoryFactory(slug="billing", name="Billing")
    ReplyTemplateFactory(category=billing)
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    tickets = [TicketFactory(subject=f"Charged twice ({n})") for n in range(3)]
    pending, approved = (
        triage_ticket_run(ticket_id=t.pk, backend=ScriptedBackend(submit(t.pk)))
        for t in tickets[:2]
    )
    assert pending is not None
    assert approved is not None
    proposal_approve(proposal=approved, reviewer=root)
    triage_ticket_run(
        ticket_id=tickets[2].pk, backend=ScriptedBackend(PermanentModelError("model down"))
    )
    agent_settings_get()  # the settings row exists before anyone opens it
    runs = (
        EvaluationRun.objects.create(suite="core", backend="offline"),
        EvaluationRun.objects.create(suite="core", backend="offline"),
    )
    spare_user = UserFactory(username="spare")
    spare: dict[str, Model] = {
        "tickets.Category": CategoryFactory(slug="unused", name="Unused"),
        "tickets.ReplyTemplate": ReplyTemplateFactory(category=billing, name="Unused"),
        "tickets.Ticket": TicketFactory(subject="Spare"),
        "tickets.TicketNote": TicketNoteFactory(),
        "evaluations.EvaluationExample": EvaluationExample.objects.create(
            suite="core", case_type="normal", ticket_snapshot={"subject": "s", "body": "b"}
        ),
        "auth.User": spare_user,
        "auth.Group": Group.objects.create(name="Spare group"),
    }
    return World(pending, approved, tickets[2], billing, runs, spare)


def _reload(obj: Model) -> Any:
    return type(obj)._default_manager.get(pk=obj.pk)


@dataclass(frozen=True)
class Op:
    name: str
    allowed: frozenset[str]
    act: Callable[[Any, World], HttpResponse]
    succeeded: Callable[[HttpResponse, World], bool]
    api: bool = False
    action: tuple[str, str] | None = None  # (model label, admin action name) it covers
    view: str | None = None  # the custom admin URL name it covers


def _review(proposal: Callable[[World], TriageProposal], **data: Any) -> Callable[..., Any]:
    def act(client: Client, world: World) -> HttpResponse:
        url = f"/admin/agent/triageproposal/{proposal(world).pk}/change/"
        return client.post(url, {key: value(world) if callable(value) else value
                                 for key, value in data.items()})  # fmt: skip

    return act


def _list_action(
    path: str, name: str, selected: Callable[[World], list[int]], **extra: str
) -> Callable[..., Any]:
    def act(client: Client, world: World) -> HttpResponse:
        data = {"action": name, "_selected_action": selected(world), "index": "0", **extra}
        return client.post(path, data)

    return act


def _status(proposal: Callable[[World], TriageProposal], status: str) -> Callable[..., bool]:
    return lambda response, world: _reload(proposal(world)).status == status


def _claimed(response: HttpResponse, world: World) -> bool:
    return _reload(world.pending).claimed_by_id is not None


def _queued(response: HttpResponse, world: World) -> bool:
    return _reload(world.stopped).status == Ticket.Status.QUEUED


def _kill_switch(client: Client, world: World) -> HttpResponse:
    settings_row = agent_settings_get()
    form = {  # every field as it is, agent_enabled unticked (omitted): the switch turned off
        "max_steps": settings_row.max_steps,
        "token_budget": settings_row.token_budget,
        "timeout_seconds": settings_row.timeout_seconds,
    }
    return client.post(f"/admin/agent/agentsettings/{settings_row.pk}/change/", form)


def _admin_ingest(client: Client, world: World) -> HttpResponse:
    form = {
        "subject": "Phoned in",
        "body": "The customer called about an invoice.",
        "requester_email": "caller@example.com",
        "channel": "phone",
        "external_id": "",
    }
    for prefix in ("notes", "agent_runs"):  # the inlines' management forms, no rows
        form |= {f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"}
    return client.post("/admin/tickets/ticket/add/", form)


def _set_password(client: Client, world: World) -> HttpResponse:
    form = {"password1": "a-new-pass-phrase-9", "password2": "a-new-pass-phrase-9"}
    return client.post(f"/admin/auth/user/{world.spare['auth.User'].pk}/password/", form)


def _compare_url(world: World) -> str:
    baseline, run = world.runs
    return f"/admin/evaluations/evaluationrun/compare/?baseline={baseline.pk}&run={run.pk}"


PROPOSALS = "/admin/agent/triageproposal/"
TICKETS = "/admin/tickets/ticket/"
RUNS = "/admin/evaluations/evaluationrun/"


def _pending(world: World) -> TriageProposal:
    return world.pending


def _approved(world: World) -> TriageProposal:
    return world.approved


ADMIN_OPS = [
    Op("review page: approve", REVIEWING, _review(_pending, action="approve"),
       _status(_pending, "approved")),
    Op("review page: edit and approve", REVIEWING,
       _review(_pending, action="edit", category=lambda w: w.billing.pk, urgency="low",
               note="Edited by a person."),
       _status(_pending, "edited")),
    Op("review page: reject", REVIEWING, _review(_pending, action="reject", reason="Wrong."),
       _status(_pending, "rejected")),
    Op("review page: undo", REVIEWING, _review(_approved, action="undo"),
       _status(_approved, "undone")),
    Op("review page: claim", REVIEWING, _review(_pending, action="claim"), _claimed),
    Op("claim the selected (list action)", REVIEWING,
       _list_action(PROPOSALS, "bulk_claim", lambda w: [w.pending.pk]), _claimed,
       action=("agent.TriageProposal", "bulk_claim")),
    Op("bulk approve", REVIEWING,
       _list_action(PROPOSALS, "bulk_approve", lambda w: [w.pending.pk]),
       _status(_pending, "approved"), action=("agent.TriageProposal", "bulk_approve")),
    Op("re-run triage (ticket page)", REVIEWING,
       lambda client, w: client.post(f"{TICKETS}{w.stopped.pk}/rerun-triage/"), _queued,
       view="tickets_ticket_rerun_triage"),
    Op("re-run triage (list action)", REVIEWING,
       _list_action(TICKETS, "rerun_triage", lambda w: [w.stopped.pk]), _queued,
       action=("tickets.Ticket", "rerun_triage")),
    Op("kill switch", ADMINS, _kill_switch,
       lambda response, w: not agent_settings_get().agent_enabled),
    Op("add a ticket (admin ingest)", frozenset({TICKET_INTAKE, *ADMINS}), _admin_ingest,
       lambda response, w: Ticket.objects.filter(subject="Phoned in").exists()),
    Op("compare runs (list action)", REVIEWING,
       _list_action(RUNS, "compare_runs", lambda w: [run.pk for run in w.runs]),
       lambda response, w: response.status_code == 302 and "/compare/" in response["Location"],
       action=("evaluations.EvaluationRun", "compare_runs")),
    Op("compare runs (page)", REVIEWING, lambda client, w: client.get(_compare_url(w)),
       lambda response, w: response.status_code == 200,
       view="evaluations_evaluationrun_compare"),
    Op("set a user's password", ONLY_SUPERUSER, _set_password,
       lambda response, w: _reload(w.spare["auth.User"]).check_password("a-new-pass-phrase-9"),
       view="auth_user_password_change"),
    Op("release check", ADMINS, lambda client, w: client.get(f"{RUNS}release-check/"),
       lambda response, w: response.status_code == 200 and b"Release table" in response.content,
       view="evaluations_release_check"),
]  # fmt: skip

# Django's delete action, on every model whose admin offers it (DRF's token admin offers no
# actions), with who holds its delete permission.
DELETERS = {
    Category: ADMINS,
    ReplyTemplate: ADMINS,
    Ticket: ONLY_SUPERUSER,
    TicketNote: ONLY_SUPERUSER,
    EvaluationExample: ADMINS,
    apps.get_model("auth", "User"): ONLY_SUPERUSER,
    Group: ONLY_SUPERUSER,
}


def _delete_op(model: type[Model], allowed: frozenset[str]) -> Op:
    label = model._meta.label
    path = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
    return Op(
        f"delete a {model._meta.verbose_name}",
        allowed,
        _list_action(path, "delete_selected", lambda w: [w.spare[label].pk], post="yes"),
        lambda response, w: not model._default_manager.filter(pk=w.spare[label].pk).exists(),
        action=(label, "delete_selected"),
    )


DELETE_OPS = [_delete_op(model, allowed) for model, allowed in DELETERS.items()]


def _api_post(path: Callable[[World], str], data: dict[str, Any] | None = None) -> Any:
    return lambda client, w: client.post(path(w), data or {}, format="json")


API_OPS = [
    Op("API: ingest a ticket", frozenset({TICKET_INTAKE, *ADMINS}),
       _api_post(lambda w: "/api/tickets/", {"subject": "By API", "body": "Invoice question.",
                                             "requester_email": "a@example.com"}),
       lambda response, w: response.status_code == 201, api=True),
    Op("API: approve", REVIEWING,
       _api_post(lambda w: f"/api/proposals/{w.pending.pk}/approve/"),
       _status(_pending, "approved"), api=True),
    Op("API: reject", REVIEWING,
       _api_post(lambda w: f"/api/proposals/{w.pending.pk}/reject/", {"reason": "Wrong."}),
       _status(_pending, "rejected"), api=True),
    Op("API: undo", REVIEWING,
       _api_post(lambda w: f"/api/proposals/{w.approved.pk}/undo/"),
       _status(_approved, "undone"), api=True),
]  # fmt: skip

OPS = ADMIN_OPS + DELETE_OPS + API_OPS


def _stored() -> dict[str, list[dict[str, Any]]]:
    """Every row of every table (but sessions, which a sign-in writes)."""
    return {
        model._meta.label: list(model._default_manager.order_by("pk").values())
        for model in apps.get_models()
        if model is not Session and not model._meta.proxy
    }


def _client(role: str, *, api: bool) -> Any:
    if role == ANONYMOUS:
        return APIClient() if api else Client()
    user = UserFactory(is_staff=True, is_superuser=role == SUPERUSER)
    if role not in {NO_GROUP, SUPERUSER}:
        user.groups.add(Group.objects.get(name=role))
    if api:
        return token_client(user)
    client = Client()
    client.force_login(user)
    return client


def _refused(response: HttpResponse, role: str, op: Op) -> bool:
    if op.api:
        return response.status_code == (401 if role == ANONYMOUS else 403)
    if role == ANONYMOUS:
        return response.status_code == 302 and response["Location"].startswith("/admin/login/")
    if response.status_code == 403:
        return True
    # A list action the role may not run is not offered to it: Django answers with the list
    # (or, when the role is offered other actions, the list again saying none was selected).
    if op.action is None or response.status_code not in {200, 302}:
        return False
    label, name = op.action
    model_admin = admin.site._registry[apps.get_model(label)]
    if name in model_admin.get_actions(response.wsgi_request):
        return False
    said = [str(message) for message in get_messages(response.wsgi_request)]
    return said == ([] if response.status_code == 200 else ["No action selected."])


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("op", OPS, ids=[op.name for op in OPS])
def test_each_role_may_do_what_its_permissions_allow_and_nothing_else(op: Op, role: str) -> None:
    world = _world()
    client = _client(role, api=op.api)
    before = _stored()

    response = op.act(client, world)

    if role in op.allowed:
        assert op.succeeded(response, world), (response.status_code, response.content[:500])
    else:
        assert _refused(response, role, op), (response.status_code, response.content[:500])
        assert _stored() == before  # nothing written, not even a log entry


def test_the_matrix_names_every_admin_action_and_custom_view() -> None:
    """Every action any registered ModelAdmin offers a superuser, and every URL an admin adds
    to Django's own (list, add, change, delete, history), has its rows above."""
    request = RequestFactory().get("/admin/")
    request.user = UserFactory(is_staff=True, is_superuser=True)
    offered, views = set(), set()
    for model, model_admin in admin.site._registry.items():
        offered |= {(model._meta.label, name) for name in model_admin.get_actions(request)}
        prefix = f"{model._meta.app_label}_{model._meta.model_name}"
        own = rf"{prefix}_(changelist|add|history|delete|change)"
        views |= {
            url.name
            for url in model_admin.get_urls()
            if url.name and not re.fullmatch(own, url.name)
        }

    assert offered == {op.action for op in OPS if op.action}
    assert views == {op.view for op in OPS if op.view}


@pytest.mark.parametrize("role", ROLES)
def test_the_ticket_pages_show_the_agent_s_work_only_to_who_may_see_it(role: str) -> None:
    """The ticket's page carries its latest trace (what the agent read and drafted, the
    similar tickets of other customers) and the list the agent's last word on each ticket:
    for staff who may see proposals and runs, not for a Ticket intake account, which may read
    tickets but, as on the API, not the agent's proposals."""
    world = _world()
    client = _client(role, api=False)
    ticket = world.pending.ticket

    page = client.get(f"/admin/tickets/ticket/{ticket.pk}/change/")
    listing = client.get("/admin/tickets/ticket/")

    if role in {ANONYMOUS, NO_GROUP}:
        assert (page.status_code, listing.status_code) in {(302, 302), (403, 403)}
        return
    assert page.status_code == listing.status_code == 200
    shown = page.content.decode()
    listed = listing.content.decode()
    sees_the_agent = role in REVIEWING
    assert (world.pending.draft_note in shown) is sees_the_agent
    assert ("Latest agent trace" in shown) is sees_the_agent
    assert ('id="triage-queue"' in shown) is sees_the_agent  # where its proposal stands
    assert ("column-triage_state" in listed) is sees_the_agent
    assert ("?queue=" in listed) is sees_the_agent  # the queue filter


@pytest.mark.parametrize("op", API_OPS, ids=[op.name for op in API_OPS])
def test_session_authenticated_api_writes_need_the_csrf_token(op: Op) -> None:
    """A browser signed in to the admin carries its session to the API: a write without the
    CSRF token is refused (a page on another site could send it) and stores nothing; the same
    request with the token goes through, so it was the CSRF check that refused it."""
    world = _world()
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    before = _stored()

    refused = op.act(client, world)

    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    assert _stored() == before
    client.get("/admin/")  # a page with a form: sets the CSRF cookie
    client.credentials(HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value)
    assert op.succeeded(op.act(client, world), world)
