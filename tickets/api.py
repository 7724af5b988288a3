"""Ticket endpoints: ingest, list, detail (DESIGN §7)."""

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.throttling import BaseThrottle

from tickets.selectors import ticket_list
from tickets.serializers import TicketIngestSerializer, TicketSerializer
from tickets.services import ticket_ingest
from triage.throttling import FailOpenScopedRateThrottle

ERROR_RESPONSES = {
    400: OpenApiResponse(description="Invalid fields; the body maps each field to its errors."),
    401: OpenApiResponse(description="No or invalid credentials."),
    403: OpenApiResponse(description="Authenticated, but not allowed."),
    413: OpenApiResponse(description="Request body over 1 MiB."),
    429: OpenApiResponse(description="Too many requests."),
}
DETAIL_RESPONSES = {**ERROR_RESPONSES, 404: OpenApiResponse(description="No such object.")}
# A page past the last, or not a positive number (?page=0, ?page=), is a 404.
LIST_RESPONSES = {
    **ERROR_RESPONSES,
    404: OpenApiResponse(description="No such page: pages are numbered from 1 to the last."),
}


class TicketViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Tickets. Creating one is idempotent on ``external_id``."""

    queryset = ticket_list()
    serializer_class = TicketSerializer
    throttle_scope = "ingest"

    def get_throttles(self) -> list[BaseThrottle]:
        # Only ingest is throttled: it is the endpoint external systems call in bulk.
        return [FailOpenScopedRateThrottle()] if self.action == "create" else []

    def get_serializer_class(self) -> type[BaseSerializer]:
        return TicketIngestSerializer if self.action == "create" else self.serializer_class

    @extend_schema(
        request=TicketIngestSerializer,
        responses={
            201: TicketSerializer,
            200: OpenApiResponse(
                TicketSerializer, description="Known external_id, same content: the existing one."
            ),
            409: OpenApiResponse(
                description="Known external_id with different content: nothing changed; the "
                "body names the existing ticket's id and the fields that differ."
            ),
            **ERROR_RESPONSES,
        },
    )
    def create(self, request: Request) -> Response:
        payload = TicketIngestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            result = ticket_ingest(**payload.validated_data)
        except DjangoValidationError as error:
            raise ValidationError(error.message_dict) from error
        if result.differs:
            return Response(
                {
                    "detail": "A ticket with this external_id exists with different "
                    f"{', '.join(result.differs)}; nothing was changed.",
                    "id": result.ticket.pk,
                    "differs": list(result.differs),
                },
                status=status.HTTP_409_CONFLICT,
            )
        ticket = self.get_queryset().get(pk=result.ticket.pk)
        return Response(
            self.serializer_class(ticket, context=self.get_serializer_context()).data,
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        )

    @extend_schema(responses={200: TicketSerializer, **LIST_RESPONSES})
    def list(self, request: Request) -> Response:
        return super().list(request)

    @extend_schema(responses={200: TicketSerializer, **DETAIL_RESPONSES})
    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        return super().retrieve(request, pk=pk)
