"""The release table of the playbook: every tool the model may call and every write path the
workflow and its review can cause, with its side-effect class, what that class requires, and
whether the live system meets it."""

from dataclasses import asdict, dataclass
from typing import Any, Literal

from agent.engine.tools import Risk
from agent.engine.writes import WritePath, write_paths
from evaluations.release.answers import UNSUPERVISED_MAX, Answer
from evaluations.release.facts import Facts
from evaluations.release.questions import undo_self_tested
from evaluations.release.sandbox import UNDO_SELF_TESTED

# The playbook's classes, by risk level, and what each requires before release.
CLASSES: dict[Risk, tuple[str, str]] = {
    Risk.READ: ("read and summarise", "logs and evaluation"),
    Risk.PROPOSE: ("propose only", "human approval"),
    Risk.INTERNAL_WRITE: ("reversible internal write", "audit and rollback"),
    Risk.EXTERNAL: ("external message", "preview and approval"),
    Risk.DESTRUCTIVE: ("deletion or payment", "refuse or separate workflow"),
}


@dataclass(frozen=True)
class Row:
    kind: Literal["tool", "write path"]
    name: str
    risk: str
    side_effect: str
    requirement: str
    met: bool
    how: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def release_table(facts: Facts, answers: dict[str, Answer]) -> list[Row]:
    rows = []
    for tool in facts.workflow.tools:
        side_effect, requirement = CLASSES[tool.risk]
        met, how = _tool_met(tool.risk, answers)
        rows.append(Row("tool", tool.name, tool.risk, side_effect, requirement, met, how))
    for path in write_paths():
        side_effect, requirement = CLASSES[path.risk]
        met, how = _path_met(path, facts, answers)
        rows.append(Row("write path", path.name, path.risk, side_effect, requirement, met, how))
    return rows


def _tool_met(risk: Risk, answers: dict[str, Answer]) -> tuple[bool, str]:
    if risk == Risk.READ:
        logged, evaluated = (
            answers["logs"].answer == "yes",
            answers["failure_cases"].answer == "yes",
        )
        return logged and evaluated, (
            f"traces {'complete' if logged else 'incomplete'}; release evaluation "
            f"{'passed' if evaluated else 'missing, stale or failing'}"
        )
    if risk == Risk.PROPOSE:
        approved = answers["approval"].answer == "yes"
        return approved, (
            "only a reviewer's approval turns it into a change"
            if approved
            else "approval is not shown to be the only path (see 'Sensitive actions')"
        )
    return False, f"a model-callable tool above {UNSUPERVISED_MAX} is never allowed here"


def _path_met(path: WritePath, facts: Facts, answers: dict[str, Answer]) -> tuple[bool, str]:
    if path.risk.level <= Risk.PROPOSE.level:
        return _tool_met(path.risk, answers)
    if path.risk == Risk.INTERNAL_WRITE:
        audited = f"audit: {path.audit}"
        if not path.undo:
            return bool(path.audit), f"{audited}; no undo service: {path.undo_how}"
        tested = path.undo in UNDO_SELF_TESTED and undo_self_tested(facts)
        return (
            tested,
            f"{audited}; {path.undo} {'self-tested' if tested else 'not shown to restore'}",
        )
    return bool(path.permission), (
        f"a staff action needing {path.permission}" if path.permission else "no human in the loop"
    )
