import pytest

from tests.factories import CategoryFactory, ReplyTemplateFactory, ResolvedTicketFactory
from tickets.models import Ticket
from tickets.services import ticket_ingest


@pytest.fixture
def billing(db):  # type: ignore[no-untyped-def]
    category = CategoryFactory(
        slug="billing", name="Billing", keywords=["invoice", "charged twice", "refund"]
    )
    ReplyTemplateFactory(category=category, name="Duplicate charge")
    return category


@pytest.fixture
def history(billing):  # type: ignore[no-untyped-def]
    """A little resolved, labelled history for retrieval."""
    login = CategoryFactory(
        slug="account-access", name="Account access", keywords=["log in", "password", "2fa"]
    )
    ResolvedTicketFactory(
        subject="Charged twice for March",
        body="Card charged twice, refund?",
        category=billing,
        urgency="high",
    )
    ResolvedTicketFactory(
        subject="Invoice shows wrong VAT",
        body="Our invoice has the wrong VAT.",
        category=billing,
        urgency="normal",
    )
    ResolvedTicketFactory(
        subject="Cannot log in", body="Password reset link expired.", category=login, urgency="high"
    )
    return {"billing": billing, "login": login}


@pytest.fixture
def new_ticket(history, django_capture_on_commit_callbacks) -> Ticket:  # type: ignore[no-untyped-def]
    """A new ticket that has not been triaged (the enqueue callback is dropped)."""
    with django_capture_on_commit_callbacks(execute=False):
        return ticket_ingest(
            subject="Charged twice this month",
            body="Hello, my card was charged twice for invoice INV-20431. Please refund one.",
            requester_email="maria@example.com",
        ).ticket
