"""Signals the agent app sends to the apps above it (DESIGN §2)."""

from django.dispatch import Signal

# Sent inside the review transaction when a reviewer corrected a proposal (edited it, or
# rejected it with a reason). Arguments: ``proposal``, ``reviewer``. ``evaluations`` records it
# as an evaluation example.
proposal_corrected = Signal()
