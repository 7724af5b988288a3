"""The agent's admin: runs and their traces, the review queue, the ticket pages' queues, and
the agent settings, the review targets."""

from agent.admin import review, runs, tickets, waiting

__all__ = ["review", "runs", "tickets", "waiting"]
