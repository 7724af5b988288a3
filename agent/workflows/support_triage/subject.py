"""What the workflow works on: a read-only view of one ticket."""

from dataclasses import dataclass, field
from typing import Any

from tickets.models import Ticket


@dataclass(frozen=True)
class TicketView:
    """The ticket under triage. In production it is read from the database; in evaluations it
    is built from a snapshot (``stored`` is then False and ``similar`` may carry the context
    snapshot's similar tickets instead of live retrieval)."""

    ticket_id: int
    subject: str
    body: str
    requester_email: str
    channel: str
    received_at: str
    stored: bool = True
    similar: list[dict[str, Any]] | None = field(default=None, compare=False)

    @property
    def text(self) -> str:
        return f"{self.subject}\n{self.body}"


def ticket_view_load(ticket_id: int) -> TicketView:
    ticket = Ticket.objects.get(pk=ticket_id)
    return TicketView(
        ticket_id=ticket.pk,
        subject=ticket.subject,
        body=ticket.body,
        requester_email=ticket.requester_email,
        channel=ticket.channel,
        received_at=ticket.created_at.isoformat(),
    )
