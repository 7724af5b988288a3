"""Pages in a real browser load everything from this server: no font, script, style or image
from a CDN or any other host (see tests/agent/test_browser.py for the browser set-up)."""

from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import Page, Request, expect
from pytest_django.live_server_helper import LiveServer

from agent.services import triage_ticket_run
from tests.agent.scripted import ScriptedBackend, submit
from tests.conftest import sign_in
from tests.factories import CategoryFactory, TicketFactory, UserFactory
from tickets.roles import TRIAGE_ADMINS

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_no_page_loads_anything_from_another_host(page: Page, live_server: LiveServer) -> None:
    CategoryFactory(slug="billing", name="Billing")
    UserFactory(username="tara", is_staff=True).groups.add(Group.objects.get(name=TRIAGE_ADMINS))
    ticket = TicketFactory(subject="Charged twice this month")
    proposal = triage_ticket_run(ticket_id=ticket.pk, backend=ScriptedBackend(submit(ticket.pk)))
    assert proposal is not None
    requested: list[str] = []

    def record(request: Request) -> None:
        requested.append(request.url)

    page.on("request", record)
    sign_in(page, live_server, "tara")
    for path, shows in [
        ("/admin/", "Site administration"),
        ("/admin/agent/triageproposal/?status__exact=pending", "Charged twice this month"),
        (f"/admin/agent/triageproposal/{proposal.pk}/change/", "Draft internal note"),
        (f"/admin/agent/agentrun/{proposal.run_id}/change/", "Trace"),
        ("/api/docs/", "Support triage API"),
        ("/api/redoc/", "Support triage API"),  # now the same docs
    ]:
        page.goto(f"{live_server.url}{path}")
        expect(page.locator("body")).to_contain_text(shows)
        page.wait_for_load_state("networkidle")

    ours = urlsplit(live_server.url).netloc
    # data: and blob: URLs are made in the page itself; anything fetched names its host.
    fetched = [urlsplit(url) for url in requested if not url.startswith(("data:", "blob:"))]
    elsewhere = sorted({url.geturl() for url in fetched if url.netloc != ours})
    assert elsewhere == []
    assert any(url.endswith("swagger-ui-bundle.js") for url in requested)
    assert page.request.get(f"{live_server.url}/favicon.ico").status == 200
