"""The offline "model" of the support-triage workflow: local, no API key, deterministic for a
given trained model.

It plays the model's part in the same loop: it reads the conversation (the tool results it was
given), calls tools through the policy like any model, and finishes with a terminal tool. Its
judgement is trained (``learning``, ``model_store``): an outcome model decides between a
proposal, a clarification and a refusal, a human-action model sets the warning flag, and for a
proposal the category and urgency come from label models trained on this team's labelled
history, weighed with the labels of the most similar resolved tickets and the admin-curated
category keywords. Structural checks (``injection``) read the ticket as a human does and flag
attempts to instruct the agent. A detail model warns the reviewer of a proposal whose request
lacks the one detail it depends on (which of several invoices, what the error says). Its
reason states the evidence.
"""

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from agent.engine.backends.base import ModelRequest, ModelTurn
from agent.workflows.support_triage import learning
from agent.workflows.support_triage.injection import injection_suspected, visible_request
from agent.workflows.support_triage.learning import TrainedJudgement
from agent.workflows.support_triage.text import signal_words, words
from agent.workflows.support_triage.tools import TOOL_NAMES
from tickets.selectors import category_active_list

VOTE_NEIGHBOURS = 10  # more neighbours vote than are shown (three are not enough evidence)
# A neighbour's vote is (its similarity / the best one's) to this power: near-duplicates of the
# ticket dominate, distant ones still break ties. Chosen on BANKING77's dev split, leave one out
# (1,200 tickets, vote alone: power 1 0.767, 2 0.785, 3 0.798, 4 0.802, 6 0.807).
SIMILARITY_POWER = 4
# How the evidence for a category is weighed when all of it is there (renormalised over what
# is): the label model trained on the history, the neighbours' vote, the curated keywords.
MODEL_WEIGHT, VOTE_WEIGHT, KEYWORD_WEIGHT = 0.6, 0.2, 0.2
URGENCY_MODEL_WEIGHT = 0.7  # against the nearest neighbours' urgency
NEIGHBOUR_URGENCY_AGREEMENT = 0.7  # without a model, neighbours set urgency when they agree
MIN_DESCRIPTION = 4  # fewer signal words than this left after injection: nothing is described
# Outcome probabilities above which the agent refuses or asks instead of proposing.
REFUSAL_THRESHOLD = 0.5
CLARIFICATION_THRESHOLD = 0.45
HUMAN_THRESHOLD = 0.5
INJECTION_THRESHOLD = 0.6
PROBE_THRESHOLD = 0.7  # the outcome model this sure that a ticket only probes the agent
# The detail model this sure that a request lacks the one detail it depends on (which of
# several invoices, what the error says): the reviewer is warned and bulk approve passes it by.
# A warning costs a reviewer a glance, so it may be wrong more often than a decision: on the
# validation split (``benchmarks/judgement.py --sweep``) it warns of half the tickets that
# lack a detail and of 2.5% of ordinary ones (0.7: 36% and 1.5%).
DETAIL_THRESHOLD = 0.5
# Why a ticket may be asked about that the history can overrule: a ticket this team has
# triaged many times is not too vague to triage, however short. A contradiction or a missing
# detail it cannot overrule: knowing the category does not say which invoice is meant.
UNCLASSIFIABLE = ("vague",)
# Without a calibrated category model, a vote this far ahead of the runner-up is ``medium``.
UNCALIBRATED_MEDIUM_MARGIN = 0.4


@dataclass
class Conversation:
    """What the offline model has learnt from the messages so far."""

    ticket_id: int | None = None
    results: dict[str, Any] = field(default_factory=dict)  # latest successful result per tool
    calls: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    failed: set[str] = field(default_factory=set)
    errors: dict[str, str] = field(default_factory=dict)  # the latest error per failed tool
    turns: int = 0

    @classmethod
    def read(cls, messages: list[dict[str, Any]]) -> "Conversation":
        seen = cls()
        names: dict[str, str] = {}
        for message in messages:
            for block in message.get("content") or []:
                if block.get("type") == "tool_use":
                    names[block["id"]] = block["name"]
                    seen.calls[block["name"]].append(block.get("input") or {})
                    seen.ticket_id = seen.ticket_id or (block.get("input") or {}).get("ticket_id")
                elif block.get("type") == "tool_result":
                    name = names.get(block["tool_use_id"], "")
                    if block.get("is_error"):
                        seen.failed.add(name)
                        seen.errors[name] = str(block.get("content", ""))
                    else:
                        seen.results[name] = json.loads(block["content"])
                        seen.failed.discard(name)
            seen.turns += message.get("role") == "assistant"
        return seen


@dataclass
class Analysis:
    outcome: str
    reason: str
    category: str = ""
    urgency: str = "normal"
    confidence: str = "low"
    question: str = ""
    missing: list[str] = field(default_factory=list)
    decline_kind: str = "other"
    injection: bool = False
    requires_human: bool = False


class OfflineTriageModel:
    """The offline "model" of one run: it keeps the trained judgement it was given for the
    whole run, and its name says which code and which trained model decided."""

    def __init__(self, judgement: TrainedJudgement, *, code: str) -> None:
        self.judgement = judgement
        self.name = f"{code}/{judgement.version}"

    def __call__(self, request: ModelRequest) -> ModelTurn:
        return offline_decide(request, self.judgement)


def offline_decide(request: ModelRequest, judgement: TrainedJudgement) -> ModelTurn:
    """The next turn: fetch what is missing, then finish with exactly one terminal tool."""
    seen = Conversation.read(request.messages)
    ticket = seen.results.get("get_ticket")
    if ticket is None:
        return _call(seen, "get_ticket", {"ticket_id": seen.ticket_id})
    if _needs_vote_neighbours(seen):
        return _call(
            seen, "list_similar_tickets", {"ticket_id": seen.ticket_id, "limit": VOTE_NEIGHBOURS}
        )
    neighbours = seen.results.get("list_similar_tickets", {}).get("tickets")
    analysis = analyse(f"{ticket['subject']}\n{ticket['body']}", neighbours, judgement)
    if analysis.outcome == "refusal":
        return _call(
            seen,
            "decline",
            {"ticket_id": seen.ticket_id, "reason": analysis.reason, "kind": analysis.decline_kind},
        )
    if analysis.outcome == "clarification":
        arguments = {
            "ticket_id": seen.ticket_id,
            "question": analysis.question,
            "missing": analysis.missing,
        }
        return _call(seen, "request_clarification", arguments)
    draft = seen.results.get("draft_reply")
    if draft is None and "draft_reply" not in seen.failed:
        template_id = _best_template(seen, analysis.category, ticket)
        if template_id is not None:
            return _call(
                seen, "draft_reply", {"ticket_id": seen.ticket_id, "template_id": template_id}
            )
    note = draft["draft"] if draft else _fallback_note(ticket, analysis, seen.errors)
    return _call(
        seen,
        "submit_triage",
        {
            "ticket_id": seen.ticket_id,
            "category": analysis.category,
            "urgency": analysis.urgency,
            "confidence": analysis.confidence,
            "reason": analysis.reason,
            "draft_note": note,
            "injection_suspected": analysis.injection,
            "requires_human_action": analysis.requires_human,
        },
    )


@dataclass(frozen=True)
class Judged:
    """What to do with a ticket, before any label: the outcome and why."""

    outcome: str
    kind: str  # for a clarification or refusal: vague, missing, contradictory, act, abuse
    injection: bool
    visible: str  # the request as a human reads it
    evidence: str


def suspects_injection(text: str, judgement: TrainedJudgement) -> bool:
    """A structural signal (``injection``), or the injection model fairly sure."""
    if injection_suspected(text, tool_names=TOOL_NAMES):
        return True
    return judgement.injection.probabilities(text).get("injection", 0.0) >= INJECTION_THRESHOLD


def judge(text: str, judgement: TrainedJudgement) -> Judged:
    """The outcome for a ticket's text. It is read as a human reads it (hidden content and
    instructions to the agent set aside); a ticket that is nothing but instructions to the
    agent is declined; a ticket that says nothing is asked about; otherwise the outcome model
    decides."""
    visible = visible_request(text)
    injection = suspects_injection(text, judgement)
    signal = signal_words(visible)
    if injection and len(signal) < MIN_DESCRIPTION:
        return Judged("refusal", "instructions", True, visible, "nothing but instructions")
    if not signal:
        return Judged("clarification", "vague", injection, visible, "it says nothing")
    outcomes = judgement.outcome.probabilities(visible)
    evidence = "outcome model: " + ", ".join(
        f"{name} {p:.2f}" for name, p in sorted(outcomes.items())
    )
    outcome = outcome_decide(outcomes)
    kind = _kind(judgement, visible, outcome) if outcome != "proposal" else ""
    if kind == "probe" and not injection:
        if outcomes["refusal"] >= PROBE_THRESHOLD:
            # Probing the agent is an attempt to instruct it, in words no structure showed.
            injection = True
        else:
            # Without a sign of one, the reason does not hold, and the ticket is judged on
            # what else it may be.
            outcome = outcome_decide({**outcomes, "refusal": 0.0})
            kind = _kind(judgement, visible, outcome) if outcome != "proposal" else ""
    return Judged(outcome, kind, injection, visible, evidence)


def analyse(
    text: str, neighbours: list[dict[str, Any]] | None, judgement: TrainedJudgement
) -> Analysis:
    """Decides the outcome (``judge``) and, for a proposal, the category, urgency and flags,
    given the ticket's neighbours (None: retrieval failed)."""
    judged = judge(text, judgement)
    if judged.outcome == "refusal":
        return Analysis(
            "refusal",
            f"{_DECLINE_REASONS[judged.kind]} ({judged.evidence}).",
            decline_kind={"abuse": "abusive", "act": "out_of_scope_action"}.get(
                judged.kind, "other"
            ),
            injection=judged.injection,
            requires_human=True,
        )
    evidence = judged.evidence
    if judged.outcome == "clarification" and judged.kind in UNCLASSIFIABLE:
        if not _clearly_classified(judged.visible, judgement):
            return _clarify(judged.kind, judged.injection, judged.evidence)
        evidence += "; it reads as unclear, but the labelled history classifies it clearly"
    elif judged.outcome == "clarification":
        return _clarify(judged.kind, judged.injection, judged.evidence)
    return _propose(judged.visible, neighbours, judgement, judged.injection, evidence)


def _clearly_classified(text: str, judgement: TrainedJudgement) -> bool:
    """Whether the team's labelled history places the ticket with little doubt: the category
    model's calibrated probability in the ``high`` band, the one held out history shows right
    at least 97% of the time. A ticket this team has triaged many times is not too vague to
    triage, however short; neighbours alone never overrule the question, since a short vague
    ticket has near neighbours in any category."""
    category, calibration = judgement.category, judgement.calibration
    if category is None or calibration is None:
        return False
    return calibration.band(max(category.probabilities(text).values())) == "high"


def _lacking_detail(text: str, judgement: TrainedJudgement) -> float | None:
    """The detail model's probability that the request lacks the one detail it depends on,
    when at least ``DETAIL_THRESHOLD``; None otherwise or without a detail model. It warns the
    reviewer and does not decide the outcome: deciding, it asked about more of the tickets that
    lack a detail and also about complete ones (README, *Measured*)."""
    if judgement.detail is None:
        return None
    probability = judgement.detail.probabilities(text).get("missing", 0.0)
    return probability if probability >= DETAIL_THRESHOLD else None


def outcome_decide(outcomes: dict[str, float]) -> str:
    """Refuse or ask when the model is fairly sure; a proposal is the default, so a doubtful
    ticket reaches a reviewer with labels rather than bouncing back to the customer."""
    if outcomes.get("refusal", 0.0) >= REFUSAL_THRESHOLD:
        return "refusal"
    if outcomes.get("clarification", 0.0) >= CLARIFICATION_THRESHOLD:
        return "clarification"
    return "proposal"


def _kind(judgement: TrainedJudgement, text: str, outcome: str) -> str:
    kinds = learning.KINDS[outcome]
    scores = judgement.kind.probabilities(text)
    return max(kinds, key=lambda kind: scores.get(kind, 0.0))


def _propose(
    text: str,
    neighbours: list[dict[str, Any]] | None,
    judgement: TrainedJudgement,
    injection: bool,
    evidence: str,
) -> Analysis:
    votes = _vote_shares(neighbours or [], power=SIMILARITY_POWER)
    scores, sources = _category_scores(text, neighbours or [], votes, judgement)
    if not scores:
        return _clarify("vague", injection, "no category fits what it says")
    ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
    category, top = ranked[0]
    margin = top - (ranked[1][1] if len(ranked) > 1 else 0.0)
    confidence, confidence_reason = _confidence(text, category, margin, judgement)
    if neighbours is None and confidence == "high":
        confidence = "medium"  # no retrieval evidence: be more careful
    lacking = _lacking_detail(text, judgement)
    if lacking is not None and confidence == "high":
        confidence = "medium"  # a person reads it before anyone acts: not for bulk approve
    urgency, urgency_reason = _urgency(text, neighbours or [], judgement)
    names = _category_names()
    name = names.get(category, category)
    runner_up = (
        f"{names.get(ranked[1][0], ranked[1][0])} {ranked[1][1]:.2f}" if len(ranked) > 1 else "none"
    )
    reason = (
        f"Category {name} (score {top:.2f}; runner-up {runner_up}): "
        f"{sources[category]}. "
        f"Urgency {urgency}: {urgency_reason}. Confidence {confidence}: {confidence_reason}. "
        f"The {evidence}."
    )
    if neighbours is None:
        reason += " Similar tickets were unavailable."
    if lacking is not None:  # first, where a reviewer reads before deciding
        reason = (
            f"It may lack a detail it depends on (which item is meant, what an error says; "
            f"detail model {lacking:.2f}): check before acting, or ask the customer. {reason}"
        )
    if judgement.category is None:
        reason += (
            " Too little labelled history to train a category model: the neighbours' vote decides."
        )
    human = judgement.human.probabilities(text).get("human", 0.0) >= HUMAN_THRESHOLD
    return Analysis(
        "proposal",
        reason,
        category=category,
        urgency=urgency,
        confidence=confidence,
        injection=injection,
        requires_human=human,
    )


def _confidence(
    text: str, category: str, margin: float, judgement: TrainedJudgement
) -> tuple[str, str]:
    """The band of the category model's calibrated probability for the chosen category, at
    thresholds chosen on held-out history (``learning.calibration_fit``). Without a calibrated
    model, nothing is ``high`` (bulk approve acts on ``high`` alone): a clear vote margin is
    ``medium``."""
    calibration = judgement.calibration
    if judgement.category is None or calibration is None:
        band = "medium" if margin >= UNCALIBRATED_MEDIUM_MARGIN else "low"
        return band, "from the vote alone, not calibrated (too little labelled history)"
    probability = judgement.category.probabilities(text).get(category, 0.0)
    band = calibration.band(probability)
    thresholds = ", ".join(f"{name} from {t:.2f}" for name, t in calibration.thresholds.items())
    return band, f"calibrated probability {probability:.2f} ({thresholds or 'no band reached'})"


# What to ask, by why the ticket cannot be triaged yet: (reason, question, what is missing).
_QUESTIONS = {
    "vague": (
        "The ticket does not say what the problem is",
        "Could you tell us which part of the product you were using, what you tried to do, "
        "and what happened instead (with any error message)?",
        ["product area", "what happened", "error message or example"],
    ),
    "missing": (
        "The ticket refers to something it does not contain (an attachment, details below or "
        "to follow, an earlier conversation, an unnamed item)",
        "Your message refers to something that did not reach us (an attachment, details, an "
        "earlier conversation or a specific item). Could you paste the details here, with any "
        "invoice, order or ticket number and the exact error message?",
        ["the referenced attachment, details or conversation", "identifiers"],
    ),
    "contradictory": (
        "The ticket asks for things that exclude each other",
        "Your message asks for two things that cannot both happen. Which one do you want?",
        ["which of the conflicting requests is meant"],
    ),
}
_DECLINE_REASONS = {
    "instructions": "The ticket is nothing but instructions to the triage agent; a human should "
    "look at it",
    "probe": "The ticket probes or instructs the triage agent instead of asking for support; a "
    "human should look at it",
    "act": "The ticket asks the assistant itself to act (money, data, accounts, permissions, "
    "security or messages). Triage cannot do that; a human must decide",
    "abuse": "The ticket is abusive or threatening toward staff; a human should handle it",
}


def _clarify(kind: str, injection: bool, evidence: str) -> Analysis:
    reason, question, missing = _QUESTIONS[kind]
    return Analysis(
        "clarification",
        f"{reason} ({evidence}).",
        question=question,
        missing=list(missing),
        injection=injection,
    )


def _vote_shares(neighbours: list[dict[str, Any]], *, power: int) -> dict[str, float]:
    """Each category's share of the neighbour vote, weighted by relative similarity ** power."""
    votes: dict[str, float] = defaultdict(float)
    best = max((float(n["similarity"]) for n in neighbours), default=0.0)
    for neighbour in neighbours if best > 0 else []:
        votes[neighbour["category"]] += (float(neighbour["similarity"]) / best) ** power
    return _shares(votes)


def _category_scores(
    text: str,
    neighbours: list[dict[str, Any]],
    vote_share: dict[str, float],
    judgement: TrainedJudgement,
) -> tuple[dict[str, float], dict[str, str]]:
    """Scores each active category in [0, 1] from the label model, the neighbour vote and the
    rule keywords, with the evidence in words."""
    active = list(category_active_list().only("slug", "keywords"))
    slugs = {category.slug for category in active}
    lowered = " ".join(words(text))
    hits = {
        category.slug: found
        for category in active
        if (found := [kw for kw in category.keywords if _contains(lowered, kw)])
    }
    # A longer phrase is more specific evidence ("would be great" outweighs "slack").
    keyword_share = _shares({s: float(sum(len(kw.split()) for kw in f)) for s, f in hits.items()})
    model_share: dict[str, float] = {}
    if judgement.category is not None:
        predicted = judgement.category.probabilities(text)
        model_share = _shares({s: p for s, p in predicted.items() if s in slugs})
    sources = [
        (MODEL_WEIGHT, model_share),
        (VOTE_WEIGHT, {s: v for s, v in vote_share.items() if s in slugs}),
        (KEYWORD_WEIGHT, keyword_share),
    ]
    total = sum(weight for weight, share in sources if share)
    scores: dict[str, float] = defaultdict(float)
    for weight, share in sources:
        for slug, value in share.items():
            scores[slug] += weight / total * value
    voters: dict[str, list[str]] = defaultdict(list)
    for neighbour in neighbours:
        voters[neighbour["category"]].append(f"#{neighbour['ticket_id']}")
    evidence = {}
    for slug in scores:
        parts = []
        if slug in model_share:
            parts.append(f"label model {model_share[slug]:.2f}")
        if voters[slug]:
            # Every voter is named: staff see each similar ticket the agent was shown.
            parts.append(
                f"{len(voters[slug])} of {len(neighbours)} similar resolved tickets "
                f"({', '.join(voters[slug])})"
            )
        if slug in hits:
            parts.append("rule keywords " + ", ".join(repr(kw) for kw in hits[slug][:4]))
        evidence[slug] = " and ".join(parts)
    return dict(scores), evidence


def _urgency(
    text: str, neighbours: list[dict[str, Any]], judgement: TrainedJudgement
) -> tuple[str, str]:
    """Urgency from the urgency model (trained on this team's labelled history with the
    written urgency corpus, or on the corpus alone while the history is small), weighed with
    the nearest neighbours' urgency."""
    votes: dict[str, float] = defaultdict(float)
    for neighbour in neighbours[:5]:
        votes[neighbour["urgency"]] += float(neighbour["similarity"])
    neighbour_share = _shares(votes)
    if judgement.urgency is None:  # no urgency corpus shipped: the neighbours, if they agree
        level = max(sorted(neighbour_share), key=lambda n: neighbour_share[n], default="normal")
        if neighbour_share.get(level, 0.0) >= NEIGHBOUR_URGENCY_AGREEMENT:
            return level, "as most of the similar resolved tickets"
        return "normal", "no urgency model, and similar tickets disagree"
    predicted = judgement.urgency.probabilities(text)
    weight = URGENCY_MODEL_WEIGHT if neighbour_share else 1.0
    scores = {
        level: weight * predicted.get(level, 0.0) + (1 - weight) * neighbour_share.get(level, 0.0)
        for level in set(predicted) | set(neighbour_share)
    }
    level = max(sorted(scores), key=lambda name: scores[name])
    source = (
        "this team's labelled history and the written urgency examples"
        if judgement.urgency_from == "history"
        else "the written urgency examples (too little labelled history)"
    )
    with_neighbours = ", with the similar tickets" if neighbour_share else ""
    return (
        level,
        f"urgency model {predicted.get(level, 0.0):.2f}, trained on {source}{with_neighbours}",
    )


def _needs_vote_neighbours(seen: Conversation) -> bool:
    if "list_similar_tickets" in seen.failed and seen.calls["list_similar_tickets"]:
        # Retried once after the context call failed; go on without neighbours.
        return len(seen.calls["list_similar_tickets"]) < 2
    asked = [call.get("limit", 3) for call in seen.calls["list_similar_tickets"]]
    return VOTE_NEIGHBOURS not in asked


def _best_template(seen: Conversation, category: str, ticket: dict[str, Any]) -> int | None:
    templates = [
        t
        for t in seen.results.get("list_reply_templates", {}).get("templates", [])
        if t["category"] == category
    ]
    if not templates:
        return None
    wanted = set(signal_words(f"{ticket['subject']} {ticket['body']}"))

    def overlap(template: dict[str, Any]) -> tuple[int, int]:
        found = set(signal_words(f"{template['name']} {template['body']}"))
        return len(wanted & found), -int(template["template_id"])

    return int(max(templates, key=overlap)["template_id"])


def _category_names() -> dict[str, str]:
    """Category names by slug: the reason is read by staff, who know categories by name."""
    return dict(category_active_list().values_list("slug", "name"))


def _fallback_note(ticket: dict[str, Any], analysis: Analysis, errors: dict[str, str]) -> str:
    """The note when no template filled. ``{subject}`` is filled for staff from the ticket
    (``tools.output_for_staff``); the model's copy of the subject is masked."""
    name = _category_names().get(analysis.category, analysis.category)
    if "draft_reply" in errors:
        missing = f"The reply template could not be filled ({errors['draft_reply']})"
    else:
        missing = "No reply template fits"
    return (
        f"Ticket #{ticket['ticket_id']} ({{subject}}) looks like {name}, urgency "
        f"{analysis.urgency}. {analysis.reason} {missing}; write the next step here before "
        "approving."
    )


def _contains(text: str, phrase: str) -> bool:
    """Whether the phrase occurs in the text; one extra word may sit inside a multi-word
    phrase ("blank white page" is a "blank page")."""
    parts = words(phrase)
    if not parts:
        return False
    if f" {' '.join(parts)} " in f" {text} ":
        return True
    pattern = r"(?:\S+ )?".join(re.escape(part) + " " for part in parts)
    return len(parts) > 1 and re.search(rf"(?:^| ){pattern}", f"{text} ") is not None


def _shares(scores: dict[str, float]) -> dict[str, float]:
    total = sum(scores.values())
    return {key: value / total for key, value in scores.items()} if total > 0 else {}


def _call(seen: Conversation, name: str, arguments: dict[str, Any]) -> ModelTurn:
    block = {
        "type": "tool_use",
        "id": f"offline_{seen.turns + 1}_{name}",
        "name": name,
        "input": arguments,
    }
    return ModelTurn(content=[block], stop_reason="tool_use")
