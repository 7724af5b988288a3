"""Reply templates: validated on save (braces, placeholders), and a template saved before
that is refused by the draft tool with a message, not a crash."""

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from agent.engine.context import RunContext
from agent.engine.tools import ToolError
from agent.workflows.support_triage.definition import SUPPORT_TRIAGE
from agent.workflows.support_triage.subject import ticket_view_load
from agent.workflows.support_triage.tools import DraftIn, draft_reply
from tests.factories import CategoryFactory, ReplyTemplateFactory, TicketFactory
from tickets.models import ReplyTemplate

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('Error {"code": 404} on {ticket_ref}', 'Unknown placeholder {"code"}'),
        ("Closing } brace alone", "The braces do not pair up"),
        ("Hello {customer_name}", "use {ticket_ref}, {customer_email}, {subject}, {category_name}"),
        ("{subject.__class__}", "Unknown placeholder {subject.__class__}"),
        ("{subject!r}", "A placeholder takes no format or conversion"),
    ],
)
def test_a_template_that_cannot_fill_is_refused_on_save(body: str, message: str) -> None:
    template = ReplyTemplate(name="T", category=CategoryFactory(), body=body)

    with pytest.raises(ValidationError) as refused:
        template.full_clean()

    assert message in str(refused.value)


def test_literal_braces_written_twice_and_known_placeholders_are_fine() -> None:
    template = ReplyTemplate(
        name="T", category=CategoryFactory(), body='Got {{"code": 404}} on {ticket_ref}.'
    )

    template.full_clean()


def test_the_admin_form_lists_the_placeholders_and_keeps_a_bad_template_out(
    client: Client, triage_admin
) -> None:  # type: ignore[no-untyped-def]
    category = CategoryFactory()
    client.force_login(triage_admin)

    form = client.get("/admin/tickets/replytemplate/add/").content.decode()
    response = client.post(
        "/admin/tickets/replytemplate/add/",
        {"name": "API errors", "category": category.pk, "body": 'Got {"code": 404}'},
    )

    assert "{customer_email} the requester's e-mail address" in form
    assert response.status_code == 200
    assert "Unknown placeholder" in response.content.decode()
    assert not ReplyTemplate.objects.exists()


def test_the_draft_tool_refuses_a_template_saved_before_validation_with_a_message() -> None:
    ticket = TicketFactory()
    template = ReplyTemplateFactory(body='Got {"code": 404} for {ticket_ref}')  # no full_clean
    ctx = RunContext(
        workflow=SUPPORT_TRIAGE, subject_id=ticket.pk, subject=ticket_view_load(ticket.pk)
    )

    with pytest.raises(ToolError, match=rf"template {template.pk} .* cannot be filled"):
        draft_reply.handler(ctx, DraftIn(ticket_id=ticket.pk, template_id=template.pk))
