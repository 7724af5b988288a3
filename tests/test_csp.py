"""The Content-Security-Policy (django-csp, triage/settings.py): every page is sent with it, no
template holds what it would block (inline styles and scripts, event-handler attributes), and
in a real browser no page of the admin or the API docs reports a violation."""

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from playwright.sync_api import ConsoleMessage, Page, expect
from pytest_django.live_server_helper import LiveServer

from agent.services import triage_ticket_run
from tests.agent.scripted import ScriptedBackend, submit
from tests.conftest import sign_in
from tests.evaluations.test_report import runs  # noqa: F401 - a fixture: two scored runs
from tests.factories import CategoryFactory, ReplyTemplateFactory, TicketFactory, UserFactory

TEMPLATES = Path(settings.BASE_DIR) / "templates"
POLICY = {
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
}
# What the policy blocks, as it appears in a template: a style attribute or block, a script
# without src, an on...= handler attribute, a javascript: URL.
INLINE = re.compile(
    r"\sstyle\s*=|<style\b|<script(?![^>]*\bsrc=)[^>]*>|\son[a-z]+\s*=|javascript:", re.IGNORECASE
)


@pytest.mark.django_db
def test_every_page_is_sent_with_the_policy(client: Client) -> None:
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    for path in ("/admin/", "/admin/login/", "/api/docs/", "/api/tickets/", "/healthz"):
        response = client.get(path, follow=True)
        assert response.status_code == 200, path
        directives = set(response["Content-Security-Policy"].split("; "))  # in any order
        assert directives == POLICY, path


@pytest.mark.parametrize(
    "template", sorted(TEMPLATES.rglob("*.html")), ids=lambda path: str(path.relative_to(TEMPLATES))
)
def test_no_template_has_what_the_policy_blocks(template: Path) -> None:
    found = INLINE.findall(template.read_text())

    assert found == [], f"{template}: move styles and scripts to a static file"


def test_the_template_check_finds_each_blocked_form() -> None:
    """The scan above is only as good as its pattern: each form the policy blocks is found,
    a script loaded from a file is not."""
    blocked = [
        '<p style="x">',
        "<style>p {}</style>",
        "<script>alert(1)</script>",
        '<a onclick="go()">',
        '<a href="javascript:go()">',
    ]

    assert all(INLINE.search(html) for html in blocked)
    assert not INLINE.search("<script src=\"{% static 'agent/review.js' %}\"></script>")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_no_page_reports_a_policy_violation(page: Page, live_server: LiveServer, runs) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    """The admin's own pages (index, lists, forms with their widgets), ours (review queue and
    page, ticket page with its trace, a run, an evaluation report, two runs compared, the
    release check) and Swagger UI: not one ``securitypolicyviolation`` event nor a console
    message about the policy. The review page's script runs (a static file)."""
    billing = CategoryFactory(slug="billing", name="Billing")
    ReplyTemplateFactory(category=billing)
    UserFactory(username="tara", is_staff=True, is_superuser=True)  # every page, users' too
    ticket = TicketFactory(subject="Charged twice this month")
    proposal = triage_ticket_run(ticket_id=ticket.pk, backend=ScriptedBackend(submit(ticket.pk)))
    assert proposal is not None
    _examples, baseline, current = runs
    violations: list[str] = []
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation', (e) => {"
        " (window.__csp = window.__csp || []).push("
        "  e.violatedDirective + ' ' + (e.blockedURI || 'inline') + ' ' + e.sourceFile"
        "  + ':' + e.lineNumber); });"
    )

    def console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            violations.append(f"{page.url}: {message.text}")

    page.on("console", console)
    sign_in(page, live_server, "tara")
    # A control: markup with a style attribute, added by a script, is refused and reported.
    page.evaluate(
        "document.body.insertAdjacentHTML('beforeend', '<p style=\\'color: red\\'>x</p>')"
    )
    expect(page.locator("body")).to_contain_text("x")
    page.wait_for_function("(window.__csp || []).length > 0")
    assert any("style-src" in line for line in page.evaluate("window.__csp"))
    violations.clear()  # the console reported the control too
    for path, shows in [
        ("/admin/", "Work queues"),
        ("/admin/agent/triageproposal/?status__exact=pending", "Charged twice this month"),
        (f"/admin/agent/triageproposal/{proposal.pk}/change/", "Draft internal note"),
        (f"/admin/tickets/ticket/{ticket.pk}/change/", "Latest agent trace"),
        ("/admin/tickets/ticket/add/", "Add ticket"),
        ("/admin/tickets/category/add/", "Add category"),  # prepopulated slug, inlines
        (f"/admin/agent/agentrun/{proposal.run_id}/change/", "Trace"),
        ("/admin/agent/agentsettings/", "Agent enabled"),
        ("/admin/evaluations/evaluationrun/", "Release check"),
        (f"/admin/evaluations/evaluationrun/{current.pk}/change/", "Pass rate by case type"),
        (f"/admin/evaluations/evaluationrun/compare/?baseline={baseline.pk}&run={current.pk}",
         "Regressions"),
        ("/admin/evaluations/evaluationrun/release-check/", "Release table"),
        ("/admin/auth/user/add/", "Add user"),
        ("/api/docs/", "Support triage API"),
    ]:  # fmt: skip
        page.goto(f"{live_server.url}{path}")
        expect(page.locator("body")).to_contain_text(shows)
        page.wait_for_load_state("networkidle")
        reported = page.evaluate("window.__csp || []")
        violations += [f"{path}: {line}" for line in reported]
        if path == f"/admin/agent/triageproposal/{proposal.pk}/change/":
            # The reject form's sentence follows the picked labels: review.js ran.
            page.locator("#reject-form select[name=correct_category]").select_option(
                label="Billing"
            )
            expect(page.locator("#reject-example")).to_contain_text("Billing")
        if path == "/api/docs/":
            expect(page.locator(".opblock").first).to_be_visible()  # the schema was loaded

    assert violations == []
