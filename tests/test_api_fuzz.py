"""Schemathesis against the served OpenAPI schema: every operation, every check, through the
real WSGI application with a real token, as a superuser (every operation allowed), a
reviewer and an intake token (some refused). ``TRIAGE_FUZZ_EXAMPLES`` sets the examples per
operation (20 by default; 100 for a deeper run).

Every check includes the default ones (no server error, status codes, content types, headers
and bodies as the schema says) and the stricter ones: invalid input is refused, valid input
accepted, authentication not ignored, a deleted resource gone. A failure prints the request
that reproduces it."""

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.contrib.auth.models import User
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import CHECKS, load_all_checks

from tests.factories import CategoryFactory, TicketFactory
from triage.wsgi import application

pytestmark = pytest.mark.django_db

load_all_checks()
EVERY_CHECK = CHECKS.get_all()


@pytest.fixture(params=["superuser", "reviewer", "intake_user"])
def caller(request: pytest.FixtureRequest) -> User:
    if request.param == "superuser":
        return User.objects.create_superuser("root", "root@example.com", "unused-password")
    user: User = request.getfixturevalue(request.param)
    return user


@pytest.fixture
def auth(caller: User) -> dict[str, str]:
    token, _ = Token.objects.get_or_create(user=caller)
    return {"Authorization": f"Token {token.key}"}


@pytest.fixture
def api_schema(auth: dict[str, str]) -> Iterator[Any]:
    # Something to list, so list responses are checked too, and categories to name.
    TicketFactory.create_batch(3)
    CategoryFactory.create_batch(2)
    # As Django's test client does: a request must not close the test's database connection
    # (it holds the test's transaction).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/schema/?format=json", application, headers=auth)
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=int(os.environ.get("TRIAGE_FUZZ_EXAMPLES", "20")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_every_operation_keeps_to_the_schema(case: Any, auth: dict[str, str]) -> None:
    case.call_and_validate(headers=auth, checks=EVERY_CHECK)
