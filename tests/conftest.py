"""Shared fixtures. Tests marked ``postgres`` or ``redis`` need that real service, and tests
marked ``browser`` need Chromium at CHROMIUM: they are skipped when it is missing, or fail when
TRIAGE_REQUIRE_SERVICES=1 (CI)."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.db import connections, transaction
from django.test import TestCase
from playwright.sync_api import Page, expect, sync_playwright
from pytest_django.live_server_helper import LiveServer
from pytest_django.plugin import blocking_manager_key
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import UserFactory
from tickets.demo.seed import demo_seed
from tickets.roles import SUPPORT_REVIEWERS, TICKET_INTAKE, TRIAGE_ADMINS

SERVICE_MARKERS = {
    "postgres": ("POSTGRES_AVAILABLE", "TEST_DATABASE_URL"),
    "redis": ("REDIS_AVAILABLE", "TEST_REDIS_URL"),
}
CHROMIUM = Path("/usr/bin/chromium")  # Debian's; Playwright cannot download a browser here
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # No calls home: on a closed network they are refused, and tests never touch the internet.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "correct-horse-battery"  # UserFactory's


def pytest_sessionstart(session: pytest.Session) -> None:
    if settings.REQUIRE_SERVICES:
        for available, url in SERVICE_MARKERS.values():
            if not getattr(settings, available):
                raise pytest.UsageError(
                    f"TRIAGE_REQUIRE_SERVICES is set but {getattr(settings, url)} is unreachable"
                )


def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker, (available, url) in SERVICE_MARKERS.items():
        if item.get_closest_marker(marker) and not getattr(settings, available):
            _missing(f"needs {marker} at {getattr(settings, url)}")
    if item.get_closest_marker("browser") and not CHROMIUM.exists():
        _missing(f"needs Chromium at {CHROMIUM} (apt-get install chromium)")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> object:
    """A transactional test ends by emptying every table, the migrations' data too (the staff
    groups and their permissions). Django's runner puts such tests last; pytest-xdist hands a
    worker whole files in any order, so that data is put back here, once the test's fixtures
    are torn down, for whichever test the worker runs next."""
    result = yield
    # After the last test the test database is already gone with the session's fixtures.
    if nextitem is not None and _flushes_the_database(item):
        connection = connections["default"]
        contents = getattr(connection, "_test_serialized_contents", None)
        if contents:
            with item.config.stash[blocking_manager_key].unblock():
                connection.creation.deserialize_db_from_string(contents)
    return result


def _flushes_the_database(item: pytest.Item) -> bool:
    marker = item.get_closest_marker("django_db")
    fixtures = set(getattr(item, "fixturenames", ()))
    return bool(marker and marker.kwargs.get("transaction")) or bool(
        fixtures & {"transactional_db", "live_server", "django_db_serialized_rollback"}
    )


def _missing(message: str) -> None:
    if settings.REQUIRE_SERVICES:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def _demo_for_the_module(request, django_db_setup, django_db_blocker):  # type: ignore[no-untyped-def]
    """The demo seeded once for a test module, inside a transaction rolled back when the module
    ends; each test runs in a savepoint of it and sees the seeded demo as it was. Seeding (468
    history tickets, 12 new tickets triaged) takes seconds, paid once rather than per test.
    A transactional test cannot share a module with it: it would flush the open transaction."""
    flushing = [
        item.name
        for item in request.session.items
        if item.module is request.module and _flushes_the_database(item)
    ]
    if flushing:
        raise pytest.UsageError(
            f"{request.module.__name__} uses the demo fixture and has transactional tests "
            f"{flushing}: move those to a module of their own"
        )
    with django_db_blocker.unblock(), transaction.atomic():
        with TestCase.captureOnCommitCallbacks(execute=True):  # the new tickets are triaged
            demo_seed()
        yield
        transaction.set_rollback(True)


@pytest.fixture
def demo(_demo_for_the_module, db):  # type: ignore[no-untyped-def]
    """The demo knowledge base (categories, templates, 468 history tickets) with its new
    tickets triaged, seeded once per module; what a test writes is rolled back after it."""


def _user_in(group_name: str):  # type: ignore[no-untyped-def]
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name=group_name))
    return user


@pytest.fixture
def reviewer(db):  # type: ignore[no-untyped-def]
    return _user_in(SUPPORT_REVIEWERS)


@pytest.fixture
def triage_admin(db):  # type: ignore[no-untyped-def]
    return _user_in(TRIAGE_ADMINS)


@pytest.fixture
def intake_user(db):  # type: ignore[no-untyped-def]
    return _user_in(TICKET_INTAKE)


@pytest.fixture
def page(monkeypatch: pytest.MonkeyPatch) -> Iterator[Page]:
    """A fresh browser page (for tests marked ``browser``). Playwright's sync API runs an event
    loop in this thread, which makes Django refuse ORM calls from it unless told that this is
    safe (it is: the loop only drives the browser)."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(10_000)
        try:
            yield page
        finally:
            browser.close()
            # While a loop runs, Django keeps this thread's connections apart from the usual
            # ones (asgiref's Local follows the loop); close them before the loop ends, or they
            # linger and PostgreSQL refuses to drop the test database.
            connections.close_all()


def sign_in(page: Page, live_server: LiveServer, username: str) -> None:
    """Signs ``username`` (made with UserFactory's password) in to the admin."""
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("#user-tools")).to_contain_text(username)


@pytest.fixture
def api() -> APIClient:
    return APIClient()


def token_client(user) -> APIClient:  # type: ignore[no-untyped-def]
    """An API client authenticated with a real DRF token of ``user``."""
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def intake_api(intake_user) -> APIClient:  # type: ignore[no-untyped-def]
    return token_client(intake_user)


@pytest.fixture
def admin_api(triage_admin) -> APIClient:  # type: ignore[no-untyped-def]
    return token_client(triage_admin)


@pytest.fixture
def reviewer_api(reviewer) -> APIClient:  # type: ignore[no-untyped-def]
    return token_client(reviewer)


@pytest.fixture(autouse=True)
def _no_throttle_state() -> None:
    """Throttle counters live in the cache; start every test with none."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def celery_worker(django_db_serialized_rollback, transactional_db):  # type: ignore[no-untyped-def]
    """A real Celery worker (thread pool) consuming from the real Redis at TEST_REDIS_URL.

    Tasks are published for real (not eager); the worker shares the test database. Use with
    the ``postgres`` and ``redis`` markers.
    """
    from celery.contrib.testing.worker import start_worker
    from celery.signals import task_postrun
    from django.db import connections

    from triage.celery import app

    def close_connections(**kwargs):  # type: ignore[no-untyped-def]
        connections.close_all()  # a worker thread must not hold the test database open

    previous = {key: app.conf[key] for key in ("broker_url", "task_always_eager")}
    app.conf.update(broker_url=settings.TEST_REDIS_URL, task_always_eager=False)
    _reset_producer_pool(app)
    import redis

    redis.Redis.from_url(settings.TEST_REDIS_URL).flushdb()
    task_postrun.connect(close_connections, weak=False)
    try:
        with start_worker(app, pool="threads", concurrency=2, perform_ping_check=False) as worker:
            yield worker
    finally:
        task_postrun.disconnect(close_connections)
        app.conf.update(previous)
        _reset_producer_pool(app)


def _reset_producer_pool(app):  # type: ignore[no-untyped-def]
    """Drop pooled broker connections so that the next publish uses the current broker_url."""
    app._pool = None
    app.amqp._producer_pool = None
