"""``GET /healthz``: is the database reachable, and the broker when one is configured."""

import logging

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Answers 200 with each dependency's state, or 503 when one is down."""
    from agent.services import enqueue_failures

    status = {"database": _database_state(), "broker": _broker_state()}
    healthy = all(value in {"ok", "eager"} for value in status.values())
    # Tickets stored but not queued (the sweeper requeues them): a count to alert on, not a
    # failure of this process.
    return JsonResponse(
        {**status, "enqueue_failures": enqueue_failures()}, status=200 if healthy else 503
    )


def _database_state() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        logger.exception("health check: database unreachable")
        return "error"
    return "ok"


def _broker_state() -> str:
    if not settings.REDIS_URL:
        return "eager"
    import redis

    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2
        )
        client.ping()
    except redis.RedisError:
        logger.exception("health check: broker unreachable")
        return "error"
    return "ok"
