"""Factories shared by every app's tests."""

import factory
from django.contrib.auth import get_user_model

from evaluations.models import EvaluationExample
from tickets.models import Category, ReplyTemplate, Ticket, TicketNote, Urgency


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password = factory.django.Password("correct-horse-battery")


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Category
        django_get_or_create = ["slug"]

    slug = factory.Sequence(lambda n: f"category-{n}")
    name = factory.LazyAttribute(lambda category: category.slug.replace("-", " ").title())
    description = "A test category."
    routing_rules = "Anything that belongs to this test category."
    keywords: list[str] = []


class ReplyTemplateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ReplyTemplate

    name = factory.Sequence(lambda n: f"Template {n}")
    category = factory.SubFactory(CategoryFactory)
    body = "Customer {customer_email} wrote about {subject} ({ticket_ref}). Check the account."


class TicketFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Ticket

    subject = factory.Sequence(lambda n: f"Test ticket {n}")
    body = "Something is not working as expected."
    requester_email = factory.Sequence(lambda n: f"customer{n}@example.com")
    channel = "email"


class ResolvedTicketFactory(TicketFactory):
    status = Ticket.Status.RESOLVED
    category = factory.SubFactory(CategoryFactory)
    urgency = Urgency.NORMAL


class TicketNoteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TicketNote

    ticket = factory.SubFactory(ResolvedTicketFactory)
    body = "Resolved by resetting the integration."


def evaluation_example(
    suite: str, subject: str, body: str, category: str, urgency: str = "", **fields: object
) -> EvaluationExample:
    """An evaluation example in ``suite`` whose ticket is ``subject`` and ``body``; a proposal is
    the acceptable outcome unless ``fields`` says otherwise."""
    fields.setdefault("acceptable_outcomes", ["proposal"])
    return EvaluationExample.objects.create(
        suite=suite,
        source="curated",
        ticket_snapshot={"subject": subject, "body": body},
        expected_category=category,
        expected_urgency=urgency,
        **fields,
    )
