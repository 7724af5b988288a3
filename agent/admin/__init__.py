"""The agent's admin: runs and their traces, the review queue, the ticket pages' queues, and
the agent settings."""

from agent.admin import review, runs, tickets

__all__ = ["review", "runs", "tickets"]
