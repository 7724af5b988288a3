from rest_framework.routers import DefaultRouter

from agent.api import ProposalViewSet, RunViewSet, TicketWithProposalViewSet

router = DefaultRouter()
router.register("tickets", TicketWithProposalViewSet, basename="ticket")
router.register("proposals", ProposalViewSet, basename="proposal")
router.register("runs", RunViewSet, basename="run")

urlpatterns = router.urls
