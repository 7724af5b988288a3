"""The agent's admin: runs and their traces, the review queue, and the agent settings."""

from agent.admin import review, runs

__all__ = ["review", "runs"]
