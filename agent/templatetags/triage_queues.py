"""The work queues at a glance, for the admin index."""

from typing import Any

from django import template

from agent.admin.review import manual_queue_url, review_queue_url
from agent.models import TriageProposal
from agent.selectors import Queue, agent_settings_get, proposal_list, tickets_in_queue

register = template.Library()


@register.simple_tag
def triage_queues() -> dict[str, Any]:
    """How many drafts await review and how many tickets need a person, and whether the agent
    is switched off."""
    return {
        "review": proposal_list(status=TriageProposal.Status.PENDING).count(),
        "manual": tickets_in_queue(queue=Queue.MANUAL).count(),
        "agent_enabled": agent_settings_get().agent_enabled,
        "review_url": review_queue_url(),
        "manual_url": manual_queue_url(),
    }
