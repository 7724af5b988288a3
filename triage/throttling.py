"""API throttling that cannot take the API down with it."""

import logging
from typing import Any

from rest_framework.request import Request
from rest_framework.throttling import ScopedRateThrottle

logger = logging.getLogger(__name__)


class FailOpenScopedRateThrottle(ScopedRateThrottle):
    """DRF's scoped throttle, counting in the shared cache (Redis when configured). When the
    cache is unreachable the request is let through and the failure logged: with Redis down
    the broker is down too, and a stored ticket (the sweeper queues it later) is worth more
    than a rate limit held for that while."""

    def allow_request(self, request: Request, view: Any) -> bool:
        try:
            return super().allow_request(request, view)
        except Exception:
            logger.exception("throttle cache unreachable; request allowed without counting")
            return True
