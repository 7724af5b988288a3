"""Project-wide middleware."""

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse


class RequestBodyLimitMiddleware:
    """Answers 413 to an API request whose declared body exceeds ``API_MAX_BODY_BYTES``.

    DRF's parsers read the request stream directly, so Django's
    ``DATA_UPLOAD_MAX_MEMORY_SIZE`` does not protect the API; this check runs before any parsing.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit: int = settings.API_MAX_BODY_BYTES
        if request.path.startswith("/api/") and _content_length(request) > limit:
            return JsonResponse(
                {"detail": f"Request body too large: the limit is {limit} bytes."}, status=413
            )
        return self.get_response(request)


def _content_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0
