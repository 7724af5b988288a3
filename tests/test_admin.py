"""Every page of every model in the admin opens: its list (with a search), its add page and an
existing object's page. Parametrised over the admin's registry, so a newly registered model is
covered as soon as it is registered (and fails here until ``_one_of_each`` makes one)."""

from typing import Any

import pytest
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.contrib.auth.models import Group
from django.db.models import Model
from django.test import Client, RequestFactory
from django.urls import reverse
from rest_framework.authtoken.models import Token, TokenProxy

from agent.models import AgentRun, AgentSettings, ReviewTarget, TriageProposal
from agent.review import ProposalEdits, proposal_approve
from agent.selectors import agent_settings_get
from agent.services import triage_ticket_run
from evaluations.models import EvaluationExample, EvaluationResult, EvaluationRun
from tests.agent.scripted import ScriptedBackend, submit
from tests.factories import (
    CategoryFactory,
    ReplyTemplateFactory,
    TicketFactory,
    TicketNoteFactory,
    UserFactory,
)
from tickets.models import ChangeRecord
from tickets.roles import SUPPORT_REVIEWERS

pytestmark = pytest.mark.django_db

REGISTERED = sorted(admin.site._registry, key=lambda model: model._meta.label)


def _one_of_each(superuser: Any) -> dict[str, Model]:
    """A stored object of every registered model, made the way the application makes them where
    it can: a proposal triaged and approved with edits leaves a note, the journal and an
    evaluation example that points at the proposal."""
    billing = CategoryFactory(slug="billing", name="Billing")
    ReplyTemplateFactory(category=billing)
    ticket = TicketFactory(subject="Charged twice", requester_email="maria@example.com")
    proposal = triage_ticket_run(
        ticket_id=ticket.pk, backend=ScriptedBackend(submit(ticket.pk, urgency="high"))
    )
    assert proposal is not None
    proposal_approve(proposal=proposal, reviewer=superuser, edits=ProposalEdits(urgency="low"))
    evaluation = EvaluationRun.objects.create(suite="corrections", backend="offline")
    example = EvaluationExample.objects.get(proposal=proposal)
    Token.objects.create(user=superuser)
    return {
        "auth.Group": Group.objects.get(name=SUPPORT_REVIEWERS),
        "auth.User": superuser,
        "authtoken.TokenProxy": TokenProxy.objects.get(user=superuser),
        "tickets.Category": billing,
        "tickets.ReplyTemplate": billing.templates.get(),
        "tickets.Ticket": ticket,
        "tickets.TicketNote": TicketNoteFactory(),
        "tickets.ChangeRecord": ChangeRecord.objects.filter(ticket=ticket).first(),
        "agent.AgentRun": AgentRun.objects.get(pk=proposal.run_id),
        "agent.AgentSettings": agent_settings_get(),
        "agent.ReviewTarget": ReviewTarget.objects.get(urgency="high"),  # a data migration's
        "agent.TriageProposal": TriageProposal.objects.get(pk=proposal.pk),
        "evaluations.EvaluationExample": example,
        "evaluations.EvaluationRun": evaluation,
        "evaluations.EvaluationResult": EvaluationResult.objects.create(
            run=evaluation, example=example, outcome="proposal", passed=True
        ),
    }


def _url(model: type[Model], page: str, *args: Any) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{page}", args=args)


@pytest.mark.parametrize("model", REGISTERED, ids=[model._meta.label for model in REGISTERED])
def test_every_admin_page_of_every_model_opens(client: Client, model: type[Model]) -> None:
    superuser = UserFactory(username="root", is_staff=True, is_superuser=True)
    existing = _one_of_each(superuser)
    assert model._meta.label in existing, f"make a {model._meta.label} in _one_of_each"
    obj = existing[model._meta.label]
    model_admin = admin.site._registry[model]
    request = RequestFactory().get("/admin/")
    request.user = superuser
    client.force_login(superuser)

    listing = client.get(_url(model, "changelist"), {"q": "charged"}, follow=True)
    assert listing.status_code == 200
    # The agent settings' list goes straight to the one row; every other list stays a list.
    assert listing.redirect_chain in ([], [(_url(AgentSettings, "change", 1), 302)])

    adding = client.get(_url(model, "add"))
    # Runs, results and the journal are evidence, the settings are one row and the review
    # targets one per urgency: not addable.
    assert adding.status_code == (200 if model_admin.has_add_permission(request) else 403)

    assert client.get(_url(model, "change", quote(obj.pk))).status_code == 200


def test_the_smoke_test_covers_models_that_cannot_be_added() -> None:
    """The add pages the smoke test expects to be refused are refused on purpose, and every
    other model can be added: a model that lost its add page by accident shows up here."""
    request = RequestFactory().get("/admin/")
    request.user = UserFactory.build(is_staff=True, is_superuser=True, is_active=True)
    refused = {
        model._meta.label
        for model, model_admin in admin.site._registry.items()
        if not model_admin.has_add_permission(request)
    }

    assert refused == {
        "agent.AgentRun",
        "agent.AgentSettings",
        "agent.ReviewTarget",
        "agent.TriageProposal",
        "evaluations.EvaluationResult",
        "evaluations.EvaluationRun",
        "tickets.ChangeRecord",
    }
