"""Deterministic cues read from ticket text: suspected prompt injection, requests for actions
outside triage, abuse, contradictions, urgency and missing or vague information. Used by the
workflow's own checks (which raise flags whatever the model says) and by the offline backend."""

import re
from typing import Final

_F: Final = re.IGNORECASE | re.VERBOSE
_AI: Final = r"(ai|assistant|bot|llm|agent|automation|triage)"

# Text that tries to instruct the agent instead of describing a problem.
INJECTION: Final = re.compile(
    rf"""(
        \b(ignore|disregard|forget|override)\b[^.\n]{{0,40}}\b(previous|prior|above|earlier|all|your)\b
            [^.\n]{{0,30}}\b(instructions?|rules|prompts?|guidelines)\b
      | \byou\s+are\s+now\b
      | \b(admin|developer|god|debug|jailbreak|dan)\s+mode\b
      | \bsystem\s+(prompt|override)\b
      | \bpriority\s+override\b
      | \bnew\s+instructions?\b
      | </?\s*(system|instructions?|ticket)\s*>
      | \bact\s+as\s+(an?\s+)?(admin|administrator|system|root)\b
      | ^\s*system\s*:                                  # a line posing as the system
      | \bnote\s+to\s+(the\s+)?{_AI}\b
      | \b{_AI}(\s+triage)?\s+(instructions?|triage)\s*:
      | <!--                                            # hidden text no human reader sees
    )""",
    _F | re.MULTILINE,
)
_HTML_COMMENT: Final = re.compile(r"<!--.*?(-->|$)", re.DOTALL)
# Where the injected sentence or line starts: a line break or the end of a sentence.
_SENTENCE_START: Final = re.compile(r"(^|\n|[.!?](\s+|$))")

# The ticket addresses the assistant or the system and asks it to act, not a human to help.
# ("immediately" alone is not such a cue: customers ask humans for things immediately too.)
_ADDRESSED_TO_AGENT: Final = re.compile(
    rf"\b{_AI}\s*[:,]|\bsystem\s*:|\bwithout\s+(waiting\s+for\s+)?(a\s+|any\s+)?"
    r"(human|approval|review)|\bdo\s+not\s+ask\s+a\s+human|\bdon'?t\s+ask\s+(a\s+)?human",
    re.IGNORECASE,
)
_OUT_OF_SCOPE_ACTION: Final = re.compile(
    r"""\b(
        (issue|process|send|make|give|pay|wire|transfer)\b[^.\n]{0,30}\b(refund|payment|money|credit)
      | pay\b[^.\n]{0,30}\b(invoice|bill|supplier)|from\s+(our|my)\s+(connected\s+)?bank\s+account
      | (grant|give|make)\b[^.\n]{0,40}\b(admin|owner|root|superuser)\b[^.\n]{0,15}
            \b(rights|access|role|permissions?)
      | transfer\b[^.\n]{0,20}\bownership|remove\b[^.\n]{0,30}\bas\s+(the\s+)?owner
      | (delete|erase|wipe|drop|purge)\b[^.\n]{0,30}
            \b(all|every|the\s+whole|database|records|accounts|users)
      | (e-?mail|send)\b[^.\n]{0,30}
            \b(the\s+customer|me\s+the\s+confirmation|confirmation|everyone|all\s+customers)
      | (change|reset)\b[^.\n]{0,30}\b(permissions?|roles?)
      | ((switch|turn)\s+off|disable)\b[^.\n]{0,20}\b(2fa|two-factor|mfa)
      | (skip|bypass|without|time\s+for)\b[^.\n]{0,12}\b(identity|verification)\s+checks?
    )""",
    _F,
)

# The customer needs something only a human may do, even when triage itself is routine.
HUMAN_ACTION: Final = re.compile(
    r"\b(refund|chargeback|delete\s+(my|our)\s+(account|data)|erase|close\s+(my|our)\s+account|"
    r"(admin|owner)\s+(rights|access|role)|change\s+(the\s+)?owner)\b",
    re.IGNORECASE,
)

# Insults, and threats against staff (harassment is abuse even when worded politely).
ABUSE: Final = re.compile(
    r"""\b(idiots?|morons?|stupid\s+(people|company|staff)|f+u+c+k+(ing)?|shit(ty)?|pathetic|worm
      | i\s+will\s+(find|hurt|kill)\s+you|burn\s+(it|you)\s+down
      | i\s+know\s+where\s+(you|he|she|they)\s+(are|live|work)
      | (found|know|have)\s+(his|her|your|their)\s+(home\s+)?address
      | pay(ing)?\s+(him|her|you|them)\s+a\s+visit|come\s+to\s+your\s+(office|house|home)
      | make\s+sure\b[^.\n]{0,30}\bregret
    )\b""",
    _F,
)

_2FA: Final = r"(2fa|two-factor(\s+authentication)?|mfa)"
# Pairs of intents that cannot both be meant: asking for both needs a clarification.
CONTRADICTIONS: Final = tuple(
    (re.compile(first, re.I), re.compile(second, re.I))
    for first, second in (
        (
            r"\b(cancel|terminate|close)\b[^.\n]{0,40}\b(subscription|account|plan|trial)\b",
            r"\b(upgrade|add(ing)?\s+\d*\s*(more\s+)?seats|renew|extend)\b",
        ),
        (
            r"\b(delete|erase|remove)\b[^.\n]{0,30}\b(my\s+)?(account|data)\b",
            r"\b(keep|restore|recover)\b[^.\n]{0,30}\b(my\s+)?(account|data)\b",
        ),
        (r"\bdowngrade\b", r"\bupgrade\b"),
        (r"\b(reduce|cut|lower|remove)\b[^.\n]{0,30}\bseats\b", r"\badd\b[^.\n]{0,20}\bseats\b"),
        (
            r"\b(close|shut|terminate|cancel)\b[^.\n]{0,30}\b(account|workspace)\b",
            r"\b(keep|leave)\b[^.\n]{0,20}\b(live|running|open|active)\b|\bstill\s+needs?\s+to\s+"
            r"(log\s*in|use|access|work)",
        ),
        (
            r"\b(remove|delete|deactivate)\b[^.\n]{0,20}\b(him|her|them|user|member)\b",
            r"\bkeeps?\b[^.\n]{0,20}\baccess\b",
        ),
        (
            r"\b(full\s+refund|refund\b[^.\n]{0,30}\b(in\s+full|entire|whole))",
            r"\b(keep|stay(ing)?)\b[^.\n]{0,20}\bon\s+(the\s+)?\w*\s*plan\b",
        ),
        (
            rf"\b((turn|switch)\s+off|disable|remove)\b[^.\n]{{0,20}}\b{_2FA}",
            rf"\b{_2FA}\b[^.\n]{{0,20}}\b(mandatory|compulsory|required)|\benforce\b[^.\n]{{0,20}}{_2FA}",
        ),
        (
            r"\b(switch|move|change)\b[^.\n]{0,30}\bmonthly\b",
            r"\b(don'?t|do\s+not)\s+(change|touch)\b[^.\n]{0,40}\b(annual|yearly)\b",
        ),
        (  # delete now, but export afterwards
            r"\b(delete|erase)\b[^.\n]{0,40}\b(immediately|right\s+away|today|now)\b",
            r"\bexport\b[^.\n]{0,60}\b(next\s+(week|month)|start\s+of\s+next|end\s+of\s+the)\b",
        ),
    )
)

# Saying that something is not urgent (and need not be rushed) overrides the word "urgent".
_NOT_URGENT: Final = re.compile(
    r"\b(not|isn'?t|nothing)\s+(urgent|pressing|critical)(\s+at\s+all)?|\bno\s+(rush|hurry)\b|"
    r"doesn'?t\s+stop\s+(me|us)\s+from\s+working|\bnot\s+a\s+priority|\btiny\s+thing\b",
    re.I,
)
# Everyone is affected but can still work: serious, not an emergency.
_DEGRADED: Final = re.compile(
    r"\b(can|are)\s+still\s+(work|use|able)|\bjust\s+(painfully\s+)?slow(ly)?\b", re.I
)
URGENCY_CUES: Final = {
    "urgent": re.compile(
        r"\b(outage|down\s+for\s+(everyone|all)|(is|are|went|goes)\s+down|all\s+(our\s+)?users|"
        r"everyone|production\s+(is\s+)?(down|broken)|data\s+loss|lost\s+(all|our)\s+data|"
        r"breach|hacked|compromised|losing\s+(sales|money|orders)|5\d\d\s+(bad\s+gateway|error)|"
        r"5\d\d\s+gateway\s+timeout|every\s+request|all\s+\d+\s+of\s+(us|our)|nothing\s+works|"
        r"nothing\s+is\s+(shipping|working))\b",
        re.I,
    ),
    "high": re.compile(
        r"\b(locked\s+out|can(no|')?t\s+(log\s*in|login|access|sign\s+in|get\s+in)|blocked|"
        r"charged\s+twice|double\s+charge|overcharged|urgent(ly)?|asap|deadline\s+(today|tomorrow)|"
        r"not\s+able\s+to\s+(work|invoice|ship)|can(no|')?t\s+(send|pick|ship|invoice)\b|"
        r"charged\b[^.\n]{0,50}\b(again|after\s+cancel\w*|wrong\s+amount)|still\s+(being\s+)?"
        r"charged|charged\s+after\s+cancel\w*)\b",
        re.I,
    ),
    "low": re.compile(
        r"\b(would\s+be\s+(great|nice)|feature\s+request|suggestion|wondering|"
        r"how\s+(do|can|should)\s+(i|we)|how\s+to|is\s+it\s+possible|any\s+plans|just\s+curious|"
        r"feedback|nice\s+to\s+have|how\s+(long|much)|what\s+would\b[^.?\n]{0,40}\bcost|"
        r"thinking\s+(about|of)|before\s+we\s+decide|nothing\s+to\s+change)\b",
        re.I,
    ),
    # A problem with a workaround is a real problem, but not a blocking one.
    "normal": re.compile(
        r"\b(workaround|i\s+have\s+to\s+(manually\s+)?re\w+|keeps\s+\w+ing|every\s+few\s+"
        r"(days|hours)|intermittent(ly)?|from\s+time\s+to\s+time|for\s+now\s+we)\b",
        re.I,
    ),
}

# The ticket points at something it does not contain: an attachment, text "below", an earlier
# conversation or ticket, details still to come, or "the" error or item without naming it.
MISSING_REFERENCE: Final = re.compile(
    r"""\b(see\s+(the\s+)?attached|attached\s+(screenshot|file|spreadsheet|document|image)
      | in\s+the\s+attach(ed|ment)|(details|more|info(rmation)?)\s+(below|to\s+follow)
      | (my|our|the)\s+(previous|last|earlier|other)\s+(ticket|message|e-?mail|request)
      | as\s+(discussed|agreed|mentioned)|we\s+discussed|same\s+as\s+(before|last\s+time)
      | the\s+error(\s+code)?\s+again|one\s+of\s+the\s+(invoices|orders|customers|reports)
    )\b""",
    _F,
)
# Words that describe a problem without saying what it is.
VAGUE: Final = re.compile(
    r"""\b(something\s+is\s+(off|wrong|weird)|(looks?|seems?)\s+(weird|strange|off|odd)
      | (broken|happening)\s+again|not\s+happy|anyone\s+there|call\s+(me|back)|call\s+back
      | behaves?\s+differently|isn'?t\s+doing\s+what|(not|honestly)\s+(sure|certain)
      | (a|one)\s+question\s+about|about\s+(your|the)\s+change|the\s+connection|some\s+of\s+(our|my)
    )\b""",
    _F,
)
# A verb about another object is no evidence for the verb's usual category
# ("cancel that invite" is not a cancellation, "reset the filter" is not a password reset).
_OTHER_OBJECT: Final = re.compile(
    r"\b(cancel|reset|delete|close)\s+(that|the|this|an?|my|our)\s+(invite|invitation|order|"
    r"meeting|call|filter|draft|export|import|report|tab|window)s?\b",
    re.IGNORECASE,
)

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
    """The text without injected instructions: HTML comments are dropped, and from the start
    of the sentence or line holding another injection cue to the end of its paragraph (what
    follows "ignore previous instructions" is the payload)."""
    kept = []
    for paragraph in re.split(r"\n\s*\n", _HTML_COMMENT.sub(" ", text)):
        if match := INJECTION.search(paragraph):
            starts = [m.end() for m in _SENTENCE_START.finditer(paragraph, 0, match.start() + 1)]
            paragraph = paragraph[: max((s for s in starts if s <= match.start()), default=0)]
        kept.append(paragraph)
    return "\n\n".join(part for part in kept if part.strip())


def out_of_scope_action(text: str) -> bool:
    """True if the text asks the assistant or system to act (refund, pay, grant, transfer,
    delete, send, switch off security), by name or through injected instructions."""
    return bool(
        _OUT_OF_SCOPE_ACTION.search(text)
        and (_ADDRESSED_TO_AGENT.search(text) or INJECTION.search(text))
    )


def abusive(text: str) -> bool:
    return bool(ABUSE.search(text))


def contradiction(text: str) -> bool:
    return any(first.search(text) and second.search(text) for first, second in CONTRADICTIONS)


def missing_reference(text: str) -> bool:
    return bool(MISSING_REFERENCE.search(text))


def vague(text: str) -> bool:
    return bool(VAGUE.search(text))


def urgency_cue(text: str) -> tuple[str, str] | None:
    """The most urgent cue found, as (urgency, the matched words), or None. An explicit "not
    urgent" outranks everything but an emergency; an emergency that still lets people work is
    high."""
    calm = _NOT_URGENT.search(text)
    text = _NOT_URGENT.sub(" ", text)
    if match := URGENCY_CUES["urgent"].search(text):
        if degraded := _DEGRADED.search(text):
            return "high", f"{match.group(0)}, but {degraded.group(0)}"
        return "urgent", match.group(0)
    if calm:
        return "low", calm.group(0)
    for level in ("high", "normal", "low"):
        if match := URGENCY_CUES[level].search(text):
            return level, match.group(0)
    return None


def without_other_objects(text: str) -> str:
    """The text without verbs that act on an object other than their usual one."""
    return _OTHER_OBJECT.sub(" ", text)


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def signal_words(text: str) -> list[str]:
    """The words that say something about the request (no greetings, fillers or stopwords)."""
    return [word for word in words(text) if word not in GENERIC_WORDS and len(word) > 1]
