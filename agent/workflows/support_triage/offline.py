"""The offline "model" of the support-triage workflow: deterministic, local, no API key.

It plays the model's part in the same loop: it reads the conversation (the tool results it was
given), calls tools through the policy like any model, and finishes with a terminal tool. It is
a real baseline, measured by the same evaluations: it votes on the category from similar
tickets' corrected labels (weighted by similarity) and the admin-curated category keywords,
picks urgency from cues and neighbours, states its evidence, asks for clarification when the
ticket says too little or contradicts itself, declines actions outside triage, and flags
suspected injection.
"""

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from agent.engine.backends.base import ModelRequest, ModelTurn
from agent.workflows.support_triage import cues
from tickets.selectors import category_active_list

VOTE_NEIGHBOURS = 10  # more neighbours vote than are shown (three are not enough evidence)
# A neighbour's vote is (its similarity / the best one's) to this power: near-duplicates of the
# ticket dominate, distant ones still break ties. Chosen on BANKING77's dev split, leave one out
# (1,200 tickets, vote alone: power 1 0.767, 2 0.785, 3 0.798, 4 0.802, 6 0.807).
SIMILARITY_POWER = 4
# Whether the neighbours agree enough to answer a vague ticket is judged more evenly (squared):
# a single near-duplicate must not make weak evidence look strong.
AGREEMENT_POWER = 2
NEIGHBOUR_WEIGHT = 0.5  # the neighbour vote and the curated keywords count alike
NEIGHBOUR_URGENCY_AGREEMENT = 0.7  # neighbours set urgency only when they mostly agree
NEIGHBOUR_AGREEMENT = 0.7  # this share of the neighbour vote is strong evidence on its own
MIN_DESCRIPTION = 4  # fewer signal words than this left after injection: nothing is described
SHORT_TICKET = 15  # signal words: a ticket this short stands or falls with what it refers to
VAGUE_TICKET = 20  # signal words: a vague ticket this short needs strong evidence


@dataclass
class Conversation:
    """What the offline model has learnt from the messages so far."""

    ticket_id: int | None = None
    results: dict[str, Any] = field(default_factory=dict)  # latest successful result per tool
    calls: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    failed: set[str] = field(default_factory=set)
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


def offline_decide(request: ModelRequest) -> ModelTurn:
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
    analysis = analyse(f"{ticket['subject']}\n{ticket['body']}", neighbours)
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
    note = draft["draft"] if draft else _fallback_note(ticket, analysis)
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


def analyse(text: str, neighbours: list[dict[str, Any]] | None) -> Analysis:
    """Decides the outcome for a ticket's text given its neighbours (None: retrieval failed)."""
    clean = cues.without_injection(text)
    injection = cues.injection_suspected(text)
    described = len(cues.signal_words(clean)) >= MIN_DESCRIPTION
    if cues.abusive(text):
        return Analysis(
            "refusal",
            "The ticket is abusive or threatening; a human should handle it.",
            decline_kind="abusive",
            injection=injection,
            requires_human=True,
        )
    # Injected orders on top of a real problem are ignored (and flagged); a ticket that is
    # nothing but an order to act is declined.
    if cues.out_of_scope_action(clean) or (not described and cues.out_of_scope_action(text)):
        return Analysis(
            "refusal",
            "The ticket asks the assistant itself to act (refund, payment, permissions, "
            "ownership, security settings, deletion or sending messages). Triage cannot do "
            "that; a human must decide.",
            decline_kind="out_of_scope_action",
            injection=injection,
            requires_human=True,
        )
    if cues.contradiction(clean):
        return Analysis(
            "clarification",
            "The ticket asks for two things that exclude each other.",
            question="Your message asks for two things that cannot both happen (for example "
            "cancelling and expanding the same subscription). Which one do you want?",
            missing=["which of the two conflicting requests is meant"],
            injection=injection,
        )
    signal = cues.signal_words(clean)
    if not signal:
        return _too_vague(injection)
    votes = _vote_shares(neighbours or [], power=SIMILARITY_POWER)
    scores, evidence, keyword_weight = _category_scores(clean, neighbours or [], votes)
    if not scores:
        return _too_vague(injection)
    ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
    category, top = ranked[0]
    if len(signal) <= SHORT_TICKET and cues.missing_reference(clean):
        return _too_vague(injection, "reference")
    # Vague words ("something is off", "the connection") are fine when the evidence is
    # strong; with undecided neighbours and at most a single keyword, a human would ask.
    agreement = _vote_shares(neighbours or [], power=AGREEMENT_POWER).get(category, 0.0)
    strong = agreement >= NEIGHBOUR_AGREEMENT or keyword_weight.get(category, 0) > 1
    if len(signal) <= VAGUE_TICKET and cues.vague(clean) and not strong:
        return _too_vague(injection)
    margin = top - (ranked[1][1] if len(ranked) > 1 else 0.0)
    urgency, urgency_reason = _urgency(clean, neighbours or [])
    confidence = "high" if margin >= 0.4 else "medium" if margin >= 0.2 else "low"
    if neighbours is None and confidence == "high":
        confidence = "medium"  # no retrieval evidence: be more careful
    runner_up = f"{ranked[1][0]} {ranked[1][1]:.2f}" if len(ranked) > 1 else "none"
    reason = (
        f"Category {category} (score {top:.2f}; runner-up {runner_up}): {evidence[category]}. "
        f"Urgency {urgency}: {urgency_reason}."
    )
    if neighbours is None:
        reason += " Similar tickets were unavailable, so this rests on the category rules only."
    return Analysis(
        "proposal",
        reason,
        category=category,
        urgency=urgency,
        confidence=confidence,
        injection=injection,
        requires_human=bool(cues.HUMAN_ACTION.search(clean)),
    )


# What to ask when the ticket says too little: (reason, question, what is missing).
_QUESTIONS = {
    "vague": (
        "The ticket does not say what the problem is.",
        "Could you tell us which part of the product you were using, what you tried to do, "
        "and what happened instead (with any error message)?",
        ["product area", "what happened", "error message or example"],
    ),
    "reference": (
        "The ticket refers to something it does not contain (an attachment, details below or "
        "to follow, an earlier conversation, an unnamed item) and says too little without it.",
        "Your message refers to something that did not reach us (an attachment, details, an "
        "earlier conversation or a specific item). Could you paste the details here, with any "
        "invoice, order or ticket number and the exact error message?",
        ["the referenced attachment, details or conversation", "identifiers"],
    ),
}


def _too_vague(injection: bool, kind: str = "vague") -> Analysis:
    reason, question, missing = _QUESTIONS[kind]
    return Analysis(
        "clarification", reason, question=question, missing=list(missing), injection=injection
    )


def _vote_shares(neighbours: list[dict[str, Any]], *, power: int) -> dict[str, float]:
    """Each category's share of the neighbour vote, weighted by relative similarity ** power."""
    votes: dict[str, float] = defaultdict(float)
    best = max((float(n["similarity"]) for n in neighbours), default=0.0)
    for neighbour in neighbours if best > 0 else []:
        votes[neighbour["category"]] += (float(neighbour["similarity"]) / best) ** power
    return _shares(votes)


def _category_scores(
    text: str, neighbours: list[dict[str, Any]], vote_share: dict[str, float]
) -> tuple[dict[str, float], dict[str, str], dict[str, float]]:
    """Scores each category in [0, 1] from the neighbour vote and the rule keywords, with the
    evidence in words and the keyword weight per category."""
    voters: dict[str, list[str]] = defaultdict(list)
    for neighbour in neighbours:
        voters[neighbour["category"]].append(f"#{neighbour['ticket_id']}")
    lowered = " ".join(cues.words(cues.without_other_objects(text)))
    hits: dict[str, list[str]] = {}
    for category in category_active_list().only("slug", "keywords"):
        matched = [kw for kw in category.keywords if _contains(lowered, kw)]
        if matched:
            hits[category.slug] = matched
    # A longer phrase is more specific evidence ("would be great" outweighs "slack").
    keyword_scores = {
        slug: float(sum(len(kw.split()) for kw in found)) for slug, found in hits.items()
    }
    keyword_share = _shares(keyword_scores)
    weight = NEIGHBOUR_WEIGHT if vote_share and keyword_share else 1.0 if vote_share else 0.0
    scores = {
        slug: weight * vote_share.get(slug, 0.0) + (1 - weight) * keyword_share.get(slug, 0.0)
        for slug in set(vote_share) | set(keyword_share)
    }
    evidence = {}
    for slug in scores:
        parts = []
        if voters[slug]:
            parts.append(
                f"{len(voters[slug])} of {len(neighbours)} similar resolved tickets "
                f"({', '.join(voters[slug][:4])})"
            )
        if slug in hits:
            parts.append("rule keywords " + ", ".join(repr(kw) for kw in hits[slug][:4]))
        evidence[slug] = " and ".join(parts)
    return scores, evidence, keyword_scores


def _urgency(text: str, neighbours: list[dict[str, Any]]) -> tuple[str, str]:
    """Urgency from cues in the text first; else from the nearest neighbours when most of them
    agree; else normal (a workaround or a standard request)."""
    cue = cues.urgency_cue(text)
    if cue:
        return cue[0], f"cue {cue[1]!r}"
    votes: dict[str, float] = defaultdict(float)
    for neighbour in neighbours[:5]:
        votes[neighbour["urgency"]] += float(neighbour["similarity"])
    total = sum(votes.values())
    if total > 0:
        urgency = max(sorted(votes), key=lambda level: votes[level])
        if votes[urgency] / total >= NEIGHBOUR_URGENCY_AGREEMENT:
            return urgency, "as most of the similar resolved tickets"
    return "normal", "no urgency cue, and similar tickets disagree"


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
    wanted = set(cues.signal_words(f"{ticket['subject']} {ticket['body']}"))

    def overlap(template: dict[str, Any]) -> tuple[int, int]:
        words = set(cues.signal_words(f"{template['name']} {template['body']}"))
        return len(wanted & words), -int(template["template_id"])

    return int(max(templates, key=overlap)["template_id"])


def _fallback_note(ticket: dict[str, Any], analysis: Analysis) -> str:
    return (
        f"Ticket #{ticket['ticket_id']} ({ticket['subject']}) looks like {analysis.category}, "
        f"urgency {analysis.urgency}. {analysis.reason} No reply template fits; write the next "
        "step here before approving."
    )


def _contains(text: str, phrase: str) -> bool:
    """Whether the phrase occurs in the text; one extra word may sit inside a multi-word
    phrase ("blank white page" is a "blank page")."""
    words = cues.words(phrase)
    if not words:
        return False
    if f" {' '.join(words)} " in f" {text} ":
        return True
    pattern = r"(?:\S+ )?".join(re.escape(word) + " " for word in words)
    return len(words) > 1 and re.search(rf"(?:^| ){pattern}", f"{text} ") is not None


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
