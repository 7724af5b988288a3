"""Markup in what customers, the model and staff write is shown as text on every admin page.

Each stored text field that reaches a page holds a payload that, rendered as HTML, would add an
element carrying ``data-pwned`` and run a script setting ``window.__pwned``. The test opens the
list and change page of every registered model, the review page and the run's trace, and
checks both: no such element in the DOM (this holds with or without a Content-Security-Policy,
which would only stop the script) and no script ran.
"""

import pytest
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.db.models import Model
from django.urls import reverse
from playwright.sync_api import Dialog, Page
from pytest_django.live_server_helper import LiveServer

from agent.models import AgentRun, TriageProposal
from agent.services import triage_ticket_run
from tests.agent.scripted import ScriptedBackend, submit
from tests.conftest import sign_in
from tests.factories import CategoryFactory, ReplyTemplateFactory, TicketFactory, UserFactory
from tickets.models import TicketNote

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

PAYLOAD = (
    '<img data-pwned src="/no-such-image" onerror="window.__pwned=1">'
    "<script data-pwned>window.__pwned=1</script>"
    '"><svg data-pwned onload="window.__pwned=1">'
)
SHORT = "<img data-pwned src=/x onerror=window.__pwned=1>"  # for names of at most 120 characters


def _hostile_objects() -> dict[type[Model], Model]:
    """A ticket, its category, template, proposal, run and note, each with the payload in
    every text a person or the model wrote."""
    category = CategoryFactory(slug="billing", name=f"Billing {SHORT}", description=PAYLOAD)
    ReplyTemplateFactory(category=category, name=f"Refund {SHORT}", body=f"{PAYLOAD} {{subject}}")
    ticket = TicketFactory(subject=f"Charged twice {PAYLOAD}", body=f"Hello {PAYLOAD} there")
    proposal = triage_ticket_run(
        ticket_id=ticket.pk,
        backend=ScriptedBackend(
            submit(ticket.pk, reason=f"Because {PAYLOAD}", draft_note=f"Note {PAYLOAD}")
        ),
    )
    assert proposal is not None
    note = TicketNote.objects.create(ticket=ticket, body=f"Staff note {PAYLOAD}")
    return {
        type(category): category,
        type(ticket): ticket,
        TriageProposal: proposal,
        AgentRun: AgentRun.objects.get(pk=proposal.run_id),
        TicketNote: note,
    }


def _admin_paths(objects: dict[type[Model], Model]) -> list[str]:
    paths = ["/admin/"]
    for model in admin.site._registry:
        prefix = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        paths.append(reverse(f"{prefix}_changelist"))
        if model in objects:
            paths.append(reverse(f"{prefix}_change", args=[quote(objects[model].pk)]))
    return paths


def test_markup_in_stored_text_is_shown_as_text_on_every_admin_page(
    page: Page, live_server: LiveServer
) -> None:
    UserFactory(username="root", is_staff=True, is_superuser=True)
    objects = _hostile_objects()
    dialogs: list[str] = []

    def dismiss(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    sign_in(page, live_server, "root")
    paths = _admin_paths(objects)
    shown_as_text = 0
    for path in paths:
        response = page.goto(f"{live_server.url}{path}")
        assert response is not None, path
        assert response.status == 200, path
        page.wait_for_load_state("load")
        assert page.locator("[data-pwned]").count() == 0, f"markup rendered on {path}"
        assert page.evaluate("() => window.__pwned") is None, f"a script ran on {path}"
        shown_as_text += "<img data-pwned" in page.locator("body").inner_text()

    assert dialogs == []
    # The check looks at pages that show the payload: most of them print it as text.
    assert shown_as_text >= len(objects)
    assert len(paths) > 2 * len(objects)
