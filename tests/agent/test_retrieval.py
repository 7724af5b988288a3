"""Similar-ticket retrieval, through its two public functions, on both database backends."""

import pytest
from django.db import connection
from django.utils import timezone

from agent.workflows.support_triage.retrieval import (
    SimilarTicket,
    similar_tickets,
    similar_tickets_for_text,
)
from tests.factories import CategoryFactory, ResolvedTicketFactory, TicketFactory, TicketNoteFactory
from tickets.models import Ticket

pytestmark = pytest.mark.django_db

HISTORY = {
    "billing": [
        ("Charged twice this month", "My credit card was charged twice for the monthly invoice."),
        (
            "Refund for a double charge",
            "The invoice shows a double charge on my card, please refund.",
        ),
        ("Wrong amount on invoice", "The invoice amount is wrong, I was billed for ten seats."),
        ("Card payment failed", "My card payment failed but the invoice says paid."),
    ],
    "login": [
        ("Cannot log in", "I cannot log in, the password reset never works."),
        ("Two-factor code rejected", "I cannot log in: the two-factor code is always rejected."),
        ("Locked out of my account", "After three wrong passwords my account is locked."),
        ("Password reset link expired", "The password reset link says it has expired."),
    ],
    "export": [
        ("CSV export is empty", "Exporting the report to CSV gives an empty file."),
        ("Export times out", "The CSV export of all contacts times out after a minute."),
        ("Excel export garbled", "Accents are garbled when I open the export in Excel."),
        ("Scheduled export missing", "The weekly scheduled export e-mail did not arrive."),
    ],
}


@pytest.fixture
def history() -> dict[str, list[Ticket]]:
    """Four resolved, labelled tickets in each of three categories."""
    return {
        slug: [
            ResolvedTicketFactory(
                subject=subject, body=body, category=CategoryFactory(slug=slug, name=slug.title())
            )
            for subject, body in rows
        ]
        for slug, rows in HISTORY.items()
    }


@pytest.mark.usefixtures("history")
@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("I was charged twice, the invoice is wrong", "billing"),
        ("Password reset never arrives, I cannot log in", "login"),
        ("The CSV export of my report is empty", "export"),
    ],
)
def test_neighbours_come_from_the_right_category(text: str, category: str) -> None:
    found = similar_tickets_for_text(text=text)

    assert [item.category_slug for item in found] == [category] * 3
    assert [item.score for item in found] == sorted((item.score for item in found), reverse=True)
    assert found[0].score > 0


def test_results_carry_the_ticket_details(history: dict[str, list[Ticket]]) -> None:
    ticket = history["export"][1]

    found = similar_tickets_for_text(text="CSV export times out after a minute", limit=1)

    assert found == [
        SimilarTicket(
            ticket_id=ticket.pk,
            subject="Export times out",
            body="The CSV export of all contacts times out after a minute.",
            category_slug="export",
            category_name="Export",
            urgency="normal",
            note="",
            score=found[0].score,
        )
    ]


def test_never_returns_the_query_ticket_itself(history: dict[str, list[Ticket]]) -> None:
    ticket = history["login"][0]

    found = similar_tickets(ticket=ticket, limit=20)

    assert ticket.pk not in {item.ticket_id for item in found}
    assert found[0].category_slug == "login"


def test_excluded_ticket_id_is_never_returned(history: dict[str, list[Ticket]]) -> None:
    ticket = history["billing"][0]

    found = similar_tickets_for_text(
        text=f"{ticket.subject} {ticket.body}", limit=20, exclude_ticket_id=ticket.pk
    )

    assert found
    assert ticket.pk not in {item.ticket_id for item in found}


@pytest.mark.usefixtures("history")
def test_only_labelled_history_is_returned() -> None:
    """Tickets not yet approved by a human are never evidence, however similar."""
    text = "Printer driver crashes while printing labels"
    category = CategoryFactory(slug="printing")
    TicketFactory(subject=text, body=text)
    TicketFactory(subject=text, body=text, status=Ticket.Status.AWAITING_REVIEW, category=category)
    TicketFactory(subject=text, body=text, status=Ticket.Status.NEEDS_MANUAL_TRIAGE)
    TicketFactory(subject=text, body=text, status=Ticket.Status.QUEUED, category=category)
    assert similar_tickets_for_text(text=text) == []

    approved = ResolvedTicketFactory(subject=text, body=text, category=category)

    assert [item.ticket_id for item in similar_tickets_for_text(text=text)] == [approved.pk]


@pytest.mark.usefixtures("history")
def test_limit_is_respected_and_capped_at_twenty() -> None:
    category = CategoryFactory(slug="sso")
    for n in range(25):
        ResolvedTicketFactory(
            subject=f"SSO login loop {n}", body="SAML redirect loop", category=category
        )

    assert len(similar_tickets_for_text(text="SAML SSO redirect loop", limit=2)) == 2
    assert len(similar_tickets_for_text(text="SAML SSO redirect loop", limit=100)) == 20
    assert similar_tickets_for_text(text="SAML SSO redirect loop", limit=0) == []


@pytest.mark.usefixtures("history")
@pytest.mark.parametrize("text", ["", "   \n ", "the and of it", "?!, ..."])
def test_text_without_words_returns_nothing_without_a_query(
    text: str,
    django_assert_num_queries,  # type: ignore[no-untyped-def]
) -> None:
    with django_assert_num_queries(0):
        assert similar_tickets_for_text(text=text) == []


@pytest.mark.usefixtures("history")
def test_words_unknown_to_the_history_return_nothing() -> None:
    assert similar_tickets_for_text(text="xylophone quasar zeppelin") == []


def test_the_latest_live_note_is_attached(history: dict[str, list[Ticket]]) -> None:
    with_notes, without_note = history["export"][0], history["export"][1]
    TicketNoteFactory(ticket=with_notes, body="Older note.")
    TicketNoteFactory(ticket=with_notes, body="Fixed by re-running the export.")
    TicketNoteFactory(ticket=with_notes, body="Retracted draft.", retracted_at=timezone.now())

    found = {item.ticket_id: item for item in similar_tickets_for_text(text="CSV export", limit=4)}

    assert found[with_notes.pk].note == "Fixed by re-running the export."
    assert found[without_note.pk].note == ""


def test_long_bodies_are_truncated() -> None:
    ResolvedTicketFactory(subject="Webhook retries", body="webhook " * 500)

    (found,) = similar_tickets_for_text(text="webhook retries")

    assert len(found.body) == 1_000


def test_query_count_does_not_grow_with_results(
    history: dict[str, list[Ticket]],
    django_assert_max_num_queries,  # type: ignore[no-untyped-def]
) -> None:
    """Term statistics, ranked candidates, notes: three queries, however many results."""
    for ticket in [ticket for tickets in history.values() for ticket in tickets]:
        TicketNoteFactory(ticket=ticket)

    ticket = TicketFactory(
        subject="Invoice, password and export problems",
        body="My card was charged, I cannot log in and the CSV export is empty.",
    )

    with django_assert_max_num_queries(3):
        found = similar_tickets(ticket=ticket, limit=20)

    assert len(found) > 5
    assert all(item.note for item in found)


@pytest.mark.usefixtures("history")
def test_a_misleading_rare_word_does_not_decide() -> None:
    """The rarest word alone must not pick the neighbours: 'Excel' occurs only in an export
    ticket, but the rest of the text is about a double charge."""
    found = similar_tickets_for_text(text="Excel shows my card was charged twice, refund please")

    assert [item.category_slug for item in found[:2]] == ["billing", "billing"]


@pytest.mark.postgres
def test_migration_adds_the_search_vector_and_its_gin_index() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT data_type, is_generated FROM information_schema.columns"
            " WHERE table_name = 'tickets_ticket' AND column_name = 'search_vector'"
        )
        assert cursor.fetchone() == ("tsvector", "ALWAYS")
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'ticket_search_labelled'")
        (definition,) = cursor.fetchone()
    assert "USING gin (search_vector)" in definition
    assert "category_id IS NOT NULL" in definition


@pytest.mark.postgres
def test_lexeme_statistics_follow_approvals_and_undo(history: dict[str, list[Ticket]]) -> None:
    """Document frequencies stay exact as tickets enter and leave the labelled history."""

    def frequency(lexeme: str) -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT ndoc FROM ticket_search_stats WHERE lexeme = %s", [lexeme])
            row = cursor.fetchone()
        return int(row[0]) if row else 0

    documents = frequency("")
    ticket = TicketFactory(subject="Calendar sync", body="The calendar integration is stuck.")
    assert (frequency("calendar"), frequency("")) == (0, documents)

    Ticket.objects.filter(pk=ticket.pk).update(
        status=Ticket.Status.TRIAGED, category=history["export"][0].category, urgency="low"
    )
    assert (frequency("calendar"), frequency("integr"), frequency("")) == (1, 1, documents + 1)

    Ticket.objects.filter(pk=ticket.pk).update(body="The calendar is stuck.")
    assert (frequency("calendar"), frequency("integr")) == (1, 0)

    Ticket.objects.filter(pk=ticket.pk).update(status=Ticket.Status.NEW, category=None, urgency="")
    assert (frequency("calendar"), frequency("")) == (0, documents)


@pytest.mark.usefixtures("history")
def test_search_syntax_in_the_text_is_just_text() -> None:
    found = similar_tickets_for_text(
        text="O'Brien's invoice: charged \\ twice & (refund) | !card:*"
    )

    assert found[0].category_slug == "billing"
