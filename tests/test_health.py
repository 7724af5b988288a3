"""GET /healthz."""

import pytest
from django.test import Client, override_settings


@pytest.mark.django_db
def test_health_without_broker_reports_eager(client: Client) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"database": "ok", "broker": "eager", "enqueue_failures": 0}


@pytest.mark.django_db
@override_settings(REDIS_URL="redis://127.0.0.1:1/0")
def test_health_with_unreachable_broker_is_503(client: Client) -> None:
    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json() == {"database": "ok", "broker": "error", "enqueue_failures": 0}


@pytest.mark.redis
@pytest.mark.django_db
def test_health_with_real_redis(client: Client, settings) -> None:  # type: ignore[no-untyped-def]
    settings.REDIS_URL = settings.TEST_REDIS_URL

    assert client.get("/healthz").json() == {
        "database": "ok",
        "broker": "ok",
        "enqueue_failures": 0,
    }


@pytest.mark.django_db
def test_health_with_broken_database_is_503(client: Client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from django.db import OperationalError

    from triage import health

    class BrokenCursor:
        def __enter__(self):  # type: ignore[no-untyped-def]
            raise OperationalError("connection refused")

        def __exit__(self, *args):  # type: ignore[no-untyped-def]
            return False

    monkeypatch.setattr(health.connection, "cursor", BrokenCursor)
    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["database"] == "error"


def test_health_needs_no_credentials_and_only_get(client: Client) -> None:
    assert client.post("/healthz").status_code == 405
