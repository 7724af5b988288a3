"""Write paths: every way a workflow, or the review of its output, changes stored data.

Each is declared on the service that performs it, with its side-effect class, how it is audited
and how it is undone, so the declaration cannot drift away from the code. The release check
lists them and tests the undo of each path that has one; a write nobody declared cannot be
shown to be safe, so a new write service declares itself the same way.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from agent.engine.tools import Risk

Caller = Literal["agent", "review"]
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class WritePath:
    name: str  # the service, e.g. "proposal_approve"
    caused_by: Caller  # "agent": no human involved; "review": a staff action
    writes: str  # what it changes, in words ("stores ...", "sets ...")
    risk: Risk  # its side-effect class
    audit: str  # where each write is recorded (the change journal, the run's trace, ...)
    undo_how: str  # how it is undone, in words; never empty
    undo: str = ""  # the name of the service that reverses it, when there is one
    permission: str = ""  # the permission a person needs ("" for the agent's own writes)


_WRITE_PATHS: dict[str, WritePath] = {}


def write_path(
    *,
    caused_by: Caller,
    writes: str,
    risk: Risk,
    audit: str,
    undo_how: str,
    undo: str = "",
    permission: str = "",
) -> Callable[[F], F]:
    """Declares the decorated service as a write path (see ``WritePath``)."""

    def register(service: F) -> F:
        if not undo_how.strip():
            raise ValueError(f"write path {service.__name__} must say how it is undone")
        _WRITE_PATHS[service.__name__] = WritePath(
            name=service.__name__,
            caused_by=caused_by,
            writes=writes,
            risk=risk,
            audit=audit,
            undo_how=undo_how,
            undo=undo,
            permission=permission,
        )
        return service

    return register


def write_paths() -> list[WritePath]:
    """Every declared write path: the agent's own first, then staff actions, each in the order
    the services were defined."""
    return sorted(_WRITE_PATHS.values(), key=lambda path: path.caused_by != "agent")
