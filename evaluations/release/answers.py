"""An answer to one question of the release playbook, and the bar every workflow shares."""

from dataclasses import dataclass, field
from typing import Literal

from agent.engine.tools import Risk

Verdict = Literal["yes", "vague", "no"]
# What an unsupervised workflow may do at most: propose (DESIGN §1).
UNSUPERVISED_MAX = Risk.PROPOSE


@dataclass
class Answer:
    key: str
    question: str
    answer: Verdict = "yes"
    evidence: list[str] = field(default_factory=list)
    fixes: list[str] = field(default_factory=list)
    hard_failures: list[str] = field(default_factory=list)
    # A stable name per hard failure (no counts, no ids), to compare against a baseline.
    hard_checks: list[str] = field(default_factory=list)

    def worse(self, answer: Verdict, fix: str) -> None:
        """Lowers the answer to ``answer`` (never raises it) and adds what to do."""
        order = ["yes", "vague", "no"]
        if order.index(answer) > order.index(self.answer):
            self.answer = answer
        if fix not in self.fixes:
            self.fixes.append(fix)

    def hard(self, check: str, failure: str, fix: str) -> None:
        self.hard_checks.append(check)
        self.hard_failures.append(failure)
        self.worse("no", fix)
