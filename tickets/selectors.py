"""Reads on tickets."""

from django.db.models import QuerySet

from tickets.models import Category, ReplyTemplate, Ticket


def ticket_list() -> QuerySet[Ticket]:
    """All tickets, newest first, with what their list representation needs."""
    return Ticket.objects.select_related("category").order_by("-created_at", "-id")


HISTORY_STATUSES = (Ticket.Status.TRIAGED, Ticket.Status.RESOLVED)


def ticket_history() -> QuerySet[Ticket]:
    """The human-labelled history: tickets triaged or resolved with a category. Labels reach a
    ticket only through staff approval or a labelled import, so this is what retrieval and
    evaluations may learn from."""
    return Ticket.objects.filter(status__in=HISTORY_STATUSES, category__isnull=False)


def category_active_list() -> QuerySet[Category]:
    """Categories the agent may choose from, in a stable order."""
    return Category.objects.filter(is_active=True).order_by("slug")


def reply_template_active_list(*, category_slug: str | None = None) -> QuerySet[ReplyTemplate]:
    templates = ReplyTemplate.objects.filter(is_active=True, category__is_active=True)
    if category_slug:
        templates = templates.filter(category__slug=category_slug)
    return templates.select_related("category").order_by("category__slug", "name")
