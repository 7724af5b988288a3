"""Receivers for the agent's signals (connected in ``EvaluationsConfig.ready``)."""

from typing import Any

from django.dispatch import receiver

from agent.models import TriageProposal
from agent.signals import proposal_corrected
from evaluations.services import example_record_correction


@receiver(proposal_corrected, dispatch_uid="evaluations.record_correction")
def record_correction(
    sender: type[TriageProposal], proposal: TriageProposal, reviewer: Any, **kwargs: Any
) -> None:
    """Every correction becomes an evaluation example."""
    example_record_correction(proposal=proposal, reviewer=reviewer, correct=kwargs.get("correct"))
