"""Reads on tickets."""

from django.db.models import QuerySet

from tickets.models import Ticket


def ticket_list() -> QuerySet[Ticket]:
    """All tickets, newest first, with what their list representation needs."""
    return Ticket.objects.select_related("category").order_by("-created_at", "-id")
