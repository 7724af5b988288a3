"""python manage.py triage_ticket: synchronous triage with the trace printed."""

import pytest
from django.core.management import CommandError, call_command

from agent.workflows.support_triage.definition import SUPPORT_TRIAGE
from tickets.models import Ticket


def test_triage_ticket_runs_and_prints_the_trace(new_ticket: Ticket, capsys) -> None:  # type: ignore[no-untyped-def]
    call_command("triage_ticket", str(new_ticket.pk))

    out = capsys.readouterr().out
    model, prompt = SUPPORT_TRIAGE.offline_model().name, SUPPORT_TRIAGE.prompt_version()
    assert f"support-triage · offline:{model} · prompt {prompt}" in out
    assert "  1. intent           Classify a support ticket" in out
    assert "  2. policy_decision  Policy allowed (get_ticket" in out
    assert "Outcome: proposal · 3 model calls · 0 tokens" in out
    assert "maria@example.com" not in out  # masked


def test_triage_ticket_refuses_a_ticket_not_waiting_and_can_show(
    new_ticket: Ticket, capsys
) -> None:  # type: ignore[no-untyped-def]
    call_command("triage_ticket", str(new_ticket.pk))
    capsys.readouterr()

    with pytest.raises(CommandError, match="is awaiting review, not waiting for triage"):
        call_command("triage_ticket", str(new_ticket.pk))
    call_command("triage_ticket", str(new_ticket.pk), "--show")
    assert "Outcome: proposal" in capsys.readouterr().out


def test_triage_ticket_unknown_or_never_run(db, capsys) -> None:  # type: ignore[no-untyped-def]
    from tests.factories import TicketFactory

    with pytest.raises(CommandError, match="no ticket #999999"):
        call_command("triage_ticket", "999999")
    with pytest.raises(CommandError, match="has no agent run yet"):
        call_command("triage_ticket", str(TicketFactory().pk), "--show")
