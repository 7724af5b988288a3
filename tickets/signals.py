"""Signals the tickets app sends to the apps above it (DESIGN §2: the one use of signals).

Receivers are connected in the higher app's ``AppConfig.ready`` and call a service.
"""

from django.dispatch import Signal

# Sent inside the ingest transaction when a new ticket was stored. Argument: ``ticket``.
# Receivers that start work must defer it with ``transaction.on_commit``.
ticket_ingested = Signal()
# Sent inside the transaction that recorded a batch of human-labelled history (the demo seed,
# a labelled import). Argument: ``count``. The agent retrains its offline model once it commits.
history_recorded = Signal()
