"""Deterministic cues read from ticket text: suspected prompt injection, requests for actions
outside triage, abuse, contradictions and urgency. Used by the workflow's own checks (which raise
flags whatever the model says) and by the offline backend."""

import re
from typing import Final

# Text that tries to instruct the agent instead of describing a problem.
INJECTION: Final = re.compile(
    r"""(
        \b(ignore|disregard|forget|override)\b[^.\n]{0,40}\b(previous|prior|above|earlier|all|your)\b
            [^.\n]{0,30}\b(instructions?|rules|prompts?|guidelines)\b
      | \byou\s+are\s+now\b
      | \b(admin|developer|god|debug|jailbreak|dan)\s+mode\b
      | \bsystem\s+prompt\b
      | \bnew\s+instructions?\b
      | </?\s*(system|instructions?|ticket)\s*>
      | \bact\s+as\s+(an?\s+)?(admin|administrator|system|root)\b
    )""",
    re.IGNORECASE | re.VERBOSE,
)

# The ticket addresses the assistant or the system and asks it to act, not a human to help.
_ADDRESSED_TO_AGENT: Final = re.compile(
    r"\b(assistant|bot|ai|agent|system|automation)\b\s*[:,]|\bwithout\s+(waiting\s+for\s+)?"
    r"(a\s+)?(human|approval|review)|\b(right\s+now|immediately|do\s+it\s+now)\b",
    re.IGNORECASE,
)
_OUT_OF_SCOPE_ACTION: Final = re.compile(
    r"""\b(
        (issue|process|send|make|give|pay|wire|transfer)\b[^.\n]{0,30}\b(refund|payment|money|credit)
      | (grant|give|make)\b[^.\n]{0,40}\b(admin|owner|root|superuser)\b[^.\n]{0,15}
            \b(rights|access|role|permissions?)
      | (delete|erase|wipe|drop|purge)\b[^.\n]{0,30}
            \b(all|every|the\s+whole|database|records|accounts|users)
      | (e-?mail|send)\b[^.\n]{0,30}
            \b(the\s+customer|me\s+the\s+confirmation|confirmation|everyone|all\s+customers)
      | (change|reset)\b[^.\n]{0,30}\b(permissions?|roles?)
    )""",
    re.IGNORECASE | re.VERBOSE,
)

# The customer needs something only a human may do, even when triage itself is routine.
HUMAN_ACTION: Final = re.compile(
    r"\b(refund|chargeback|delete\s+(my|our)\s+(account|data)|erase|close\s+(my|our)\s+account|"
    r"(admin|owner)\s+(rights|access|role)|change\s+(the\s+)?owner)\b",
    re.IGNORECASE,
)

ABUSE: Final = re.compile(
    r"\b(idiots?|morons?|stupid\s+(people|company|staff)|f+u+c+k+(ing)?|shit(ty)?|"
    r"i\s+will\s+(find|hurt|kill)\s+you|burn\s+(it|you)\s+down)\b",
    re.IGNORECASE,
)

# Pairs of intents that cannot both be meant: asking for both needs a clarification.
CONTRADICTIONS: Final = (
    (
        re.compile(
            r"\b(cancel|terminate|close)\b[^.\n]{0,40}\b(subscription|account|plan)\b", re.I
        ),
        re.compile(r"\b(upgrade|add(ing)?\s+\d*\s*(more\s+)?seats|renew|extend)\b", re.I),
    ),
    (
        re.compile(r"\b(delete|erase|remove)\b[^.\n]{0,30}\b(my\s+)?(account|data)\b", re.I),
        re.compile(r"\b(keep|restore|recover)\b[^.\n]{0,30}\b(my\s+)?(account|data)\b", re.I),
    ),
)

URGENCY_CUES: Final = {
    "urgent": re.compile(
        r"\b(outage|down\s+for\s+(everyone|all)|(is|are|went|goes)\s+down|all\s+(our\s+)?users|"
        r"everyone|production\s+(is\s+)?(down|broken)|data\s+loss|lost\s+(all|our)\s+data|"
        r"breach|hacked|compromised|losing\s+(sales|money|orders)|5\d\d\s+(bad\s+gateway|error)|"
        r"every\s+request)\b",
        re.I,
    ),
    "high": re.compile(
        r"\b(locked\s+out|can(no|')?t\s+(log\s*in|login|access|sign\s+in)|blocked|charged\s+twice|"
        r"double\s+charge|overcharged|urgent(ly)?|asap|deadline\s+(today|tomorrow)|"
        r"not\s+able\s+to\s+(work|invoice|ship))\b",
        re.I,
    ),
    "low": re.compile(
        r"\b(would\s+be\s+(great|nice)|feature\s+request|suggestion|wondering|"
        r"how\s+(do|can|should)\s+(i|we)|how\s+to|is\s+it\s+possible|any\s+plans|just\s+curious|"
        r"feedback|nice\s+to\s+have)\b",
        re.I,
    ),
    # A problem with a workaround is a real problem, but not a blocking one.
    "normal": re.compile(
        r"\b(workaround|i\s+have\s+to\s+(manually\s+)?re\w+|keeps\s+\w+ing|every\s+few\s+"
        r"(days|hours)|intermittent(ly)?|from\s+time\s+to\s+time|for\s+now\s+we)\b",
        re.I,
    ),
}

_WORD: Final = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
# Words that carry no signal about what the ticket is about.
GENERIC_WORDS: Final = frozenset(
    """a an the and or but if then so to of in on at for from with by is are was were be been
    it its this that these those i me my we our us you your he she they them hi hello hey
    dear thanks thank regards best cheers please pls help fix fixed issue issues problem
    problems broken work works working doesn't don't isn't not no yes can can't cannot
    could would should do does did done get got have has had just still again now today
    any some something anything thing things stuff asap urgent team support sir madam
    there here what when why how who which all very really ok okay""".split()
)


def injection_suspected(text: str) -> bool:
    return bool(INJECTION.search(text))


def without_injection(text: str) -> str:
    """The text without injected instructions: from each injection cue to the end of its
    paragraph is dropped (what follows "ignore previous instructions" is the payload)."""
    paragraphs = re.split(r"\n\s*\n", text)
    kept = []
    for paragraph in paragraphs:
        match = INJECTION.search(paragraph)
        kept.append(paragraph[: match.start()] if match else paragraph)
    return "\n\n".join(part for part in kept if part.strip())


def out_of_scope_action(text: str) -> bool:
    """True if the text asks the assistant or system to act (refund, grant, delete, send)."""
    return bool(_OUT_OF_SCOPE_ACTION.search(text) and _ADDRESSED_TO_AGENT.search(text))


def abusive(text: str) -> bool:
    return bool(ABUSE.search(text))


def contradiction(text: str) -> bool:
    return any(first.search(text) and second.search(text) for first, second in CONTRADICTIONS)


def urgency_cue(text: str) -> tuple[str, str] | None:
    """The most urgent cue found, as (urgency, the matched words), or None."""
    for level in ("urgent", "high", "normal", "low"):
        if match := URGENCY_CUES[level].search(text):
            return level, match.group(0)
    return None


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def signal_words(text: str) -> list[str]:
    """The words that say something about the request (no greetings, fillers or stopwords)."""
    return [word for word in words(text) if word not in GENERIC_WORDS and len(word) > 1]
