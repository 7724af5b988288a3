"""Mask secrets and personal data before text is stored in a trace, logged, or sent to a model.

Masks are typed markers such as ``[REDACTED:email]``; on any internal error a string becomes
``[REDACTED:redaction_failed]`` (fail closed). Layers run in order (see ``_RULES``): own rules
for what no library knows (private keys, JWTs, provider API keys, bearer tokens, Authorization
headers, labelled secrets such as ``password: x``), e-mails, then IBANs and cards kept only if
``python-stdnum`` accepts their checksum, then phones via ``phonenumbers`` (libphonenumber).

To add a provider key, extend ``_API_KEY`` and its gate in ``_RULES``; for national phone
numbers of another country, add it to ``PHONE_REGIONS`` (``+CC`` numbers are always found).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from functools import partial
from typing import Final, TypeVar, cast

import phonenumbers
from stdnum import iban, luhn

FAILED: Final = "[REDACTED:redaction_failed]"
PHONE_REGIONS: Final = ("US", "GB")

_T = TypeVar("_T")
_Step = Callable[[str], str]

# Private keys go first, before later rules chew their body up piecemeal. A block cut off
# before its END line is masked over its base64 runs (half a key is still a leak); runs of 16+
# characters, so that a following "password:" label is not swallowed, leaving its value bare.
_PRIVATE_KEY: Final = re.compile(
    r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----"
    r"(?:.*?-----END[A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----|(?:\s*[A-Za-z0-9+/]{16,}={0,2})*)",
    re.DOTALL,
)
_JWT: Final = re.compile(r"\beyJ[\w-]+\.eyJ[\w-]+\.[\w-]*")
# Shapes published by each provider. The OpenAI branch demands a digit so that long
# hyphenated words that happen to start with "sk-" are left alone.
_API_KEY: Final = re.compile(
    r"""\b(?:
        sk-ant-[\w-]{16,}
      | sk-(?:proj-|svcacct-|admin-)?(?=[\w-]*\d)[\w-]{20,}
      | (?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])
      | gh[pousr]_[A-Za-z0-9]{30,}
      | github_pat_\w{22,}
      | xox[abeprs]-[A-Za-z0-9-]{10,}
      | [rs]k_(?:live|test)_[A-Za-z0-9]{16,}
    )""",
    re.VERBOSE,
)
# "bearer of bad news" must survive: a token needs a digit or at least 16 characters.
_BEARER: Final = re.compile(
    r"\b(bearer)\s+(?=[\w.~+/=-]*\d|[\w.~+/=-]{16})[\w.~+/-]{8,}=*", re.IGNORECASE
)
_AUTH_HEADER: Final = re.compile(
    r"""\b((?:proxy-)?authorization["']?[ \t]*[:=][ \t]*["']?)"""
    r"(?!(?:\w+\s+)?\[REDACTED:)((?:basic|bearer|digest|negotiate|ntlm|token)\s+)?([^\s\"',;]+)",
    re.IGNORECASE,
)
# A label is found by its core word alone (so "ANTHROPIC_API_KEY", "csrftoken" and
# "x-api-key" all qualify) plus a bounded suffix: no prefix scan, which made long hyphenated
# text quadratic. "max_tokens" does not qualify: the suffix needs a separator.
_LABEL: Final = (
    r"(?:password|passwd|passphrase|passcode|pwd|secret|api[_-]?key|access[_-]?key"
    r"|private[_-]?key|token)(?:[_.-][a-z0-9]{1,24}){0,3}"
)
_LABEL_KEY: Final = re.compile(rf"{_LABEL}\Z", re.IGNORECASE)
# "password: x", "api_key=x", '"secret": "x"'. An unquoted value runs to whitespace; "," ";"
# "'" end it only before a space or quote, "&" only before a query string's next "name=", so
# "pa&ss,w;ord" is masked whole. The leading lookahead makes the scan 3x faster on prose.
_LABELLED_SECRET: Final = re.compile(
    rf"""(?=[pPsSaAtT])({_LABEL}["']?[ \t]*[:=]>?[ \t]*)(?!["']?\[REDACTED:)"""
    r"""(?:"[^"\n]+"|'[^'\n]+'|(?:[^\s"',;&]|[,;'](?=[^\s"',;&])|&(?!\w+=))+)""",
    re.IGNORECASE,
)
# "pwd hunter2", "my password is Summer2024!": without a separator only a value that holds a
# digit or a symbol counts, so prose like "password reset link" stays intact.
_SPOKEN_SECRET: Final = re.compile(
    r"\b(password|passwd|passphrase|passcode|pwd)(\s+(?:is|was)?\s*:?\s*)(?!\[REDACTED:)"
    r"(?=[^\s\"',;]*[\d@#$%^&*~])[^\s\"',;]{4,}",
    re.IGNORECASE,
)
# A local part as people write it, or quoted (RFC 5321: "jane doe"@example.com); a domain name,
# or an address literal in brackets (jane@[192.0.2.1], jane@[IPv6:2001:db8::1]). Ingest accepts
# all of these, so all of them are masked.
_EMAIL: Final = re.compile(
    r'(?:(?<![\w.%+-])[\w.%+-]+|"(?:[^"\\\r\n]|\\.){1,64}")'
    r"@(?:[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}\b|\[(?:IPv6:)?[0-9A-Fa-f:.]{2,45}\])"
)
# Candidates only; the checksum decides. Upper case only, as IBANs are printed.
_IBAN: Final = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
# 13 to 19 digits with optional single spaces or dashes; not glued to words, "+" (phone) or a
# decimal point (amounts, versions), nor the tail of an IBAN-shaped string that failed its
# checksum (its digits pass Luhn one time in ten), nor a URL's path segment (an id: one in ten
# passes Luhn too; a card in a query string, ``?card=4111...``, is still masked).
_CARD: Final = re.compile(r"(?<![\w+./-])(?<![A-Z]{2}\d\d )(?:\d[ -]?){12,18}\d(?![\w-]|\.\d)")
_SEPARATOR: Final = re.compile(r"[ -]")
# libphonenumber is by far the slowest layer (0.1 to 1 ms per number parsed): it only sees
# short windows around phone-shaped runs, not inside a token, nor dates or IPv4 addresses.
_PHONE_CANDIDATE: Final = re.compile(
    r"(?<![\w+.-])(?!\d{4}-\d\d-\d\d|\d\d?[.-]\d\d?[.-]\d{2,4}(?!\d)|\d{1,3}(?:\.\d{1,3}){3}(?!\d))"
    r"\+?\(?\d[\d ().-]{5,24}\d"
)
_PHONE_FORMATTING: Final = re.compile(r"[\s().-]")
_PHONE_CONTEXT: Final = 12  # characters either side, for the matcher's own context checks
# A digit-heavy dump can hold hundreds of candidates; past this many the rest are masked
# unverified, which bounds the cost and errs on the side of hiding.
_PHONE_BUDGET: Final = 32


def _marker(kind: str) -> str:
    return f"[REDACTED:{kind}]"


def _mask_auth_header(match: re.Match[str]) -> str:
    scheme = match.group(2) or ""
    kind = "bearer" if scheme.lower().startswith("bearer") else "secret"
    return f"{match.group(1)}{scheme}{_marker(kind)}"


def _mask_labelled(match: re.Match[str]) -> str:
    value = match.group(0)[len(match.group(1)) :]
    quote = value[0] if value[0] in "\"'" else ""
    return f"{match.group(1)}{quote}{_marker('secret')}{quote}"


def _mask_checked(
    text: str, pattern: re.Pattern[str], is_valid: Callable[[str], bool], kind: str
) -> str:
    """Mask each ``pattern`` candidate whose longest valid prefix passes ``is_valid``."""
    pieces, pos = [], 0
    while match := pattern.search(text, pos):
        # Candidates are greedy ("DE89 3704 0044 0532 0130 00 NL91 ..." runs into the next
        # number): mask the longest valid prefix ending at a group boundary, rescan after it.
        candidate = match.group()
        ends = [m.start() for m in _SEPARATOR.finditer(candidate)] + [len(candidate)]
        valid = next((end for end in reversed(ends) if is_valid(candidate[:end])), None)
        if valid is None:
            pieces.append(text[pos : match.end()])
            pos = match.end()
        else:
            pieces += [text[pos : match.start()], _marker(kind)]
            pos = match.start() + valid
    return "".join(pieces) + text[pos:]


def _is_card(candidate: str) -> bool:
    digits = re.sub(r"\D", "", candidate)
    return 13 <= len(digits) <= 19 and bool(luhn.is_valid(digits))


def _is_dialled(raw: str) -> bool:
    # A bare "4155550132" is more often an order or account number than a phone: national
    # numbers count only when written with separators. No phone number has under 7 digits.
    shaped = raw.startswith("+") or bool(_PHONE_FORMATTING.search(raw))
    return shaped and sum(ch.isdigit() for ch in raw) >= 7


def _is_international(raw: str) -> bool:
    """A number written with a +CC that could be someone's phone: a country calling code that
    exists and, with it, 8 to 15 digits (E.164's most). Unlike libphonenumber's *valid*, this
    does not ask whether the area code is assigned or the length exact for the region: a
    number a digit short or long, or in an unassigned range, is still somebody's data."""
    if not raw.startswith("+"):
        return False
    digits = re.sub(r"\D", "", raw)
    if not 8 <= len(digits) <= 15:
        return False
    return any(
        phonenumbers.region_code_for_country_code(int(digits[:size])) != "ZZ" for size in (1, 2, 3)
    )


def _mask_phones(text: str) -> str:
    """Mask every +CC number that could be a phone, and national numbers that libphonenumber
    deems valid in ``PHONE_REGIONS``."""
    spans: list[tuple[int, int]] = []
    candidates = (c for c in _PHONE_CANDIDATE.finditer(text) if _is_dialled(c.group()))
    for checked, candidate in enumerate(candidates):
        if checked >= _PHONE_BUDGET:
            spans.append(candidate.span())
            continue
        low = max(0, candidate.start() - _PHONE_CONTEXT)
        window = text[low : candidate.end() + _PHONE_CONTEXT]
        for region in PHONE_REGIONS:
            matcher = phonenumbers.PhoneNumberMatcher(
                window, region, leniency=phonenumbers.Leniency.VALID
            )
            found = [(low + m.start, low + m.end) for m in matcher if _is_dialled(m.raw_string)]
            spans += found
            if any(s <= candidate.start() and candidate.end() <= e for s, e in found):
                break  # the whole run is one number: other regions cannot add to it
        covered = any(s <= candidate.start() and candidate.end() <= e for s, e in spans)
        if not covered and _is_international(candidate.group()):
            spans.append(candidate.span())  # possible, if not valid: still a phone number
    # Windows and regions overlap, so spans may too: one marker per run of overlapping spans.
    pieces, done = [], 0
    for start, end in sorted(spans):
        if start >= done:
            pieces += [text[done:start], _marker("phone")]
        done = max(done, end)
    return "".join(pieces) + text[done:]


def _sub(pattern: re.Pattern[str], repl: str | Callable[[re.Match[str]], str]) -> _Step:
    return lambda text: pattern.sub(repl, text)


# (cheap gate, step) in order. A step runs only if one of its gate words occurs in the
# lower-cased text: a substring test costs microseconds, a regex scan of 5 KB a few hundred,
# and most text holds no secret at all. An empty gate means "always run".
_RULES: Final[tuple[tuple[tuple[str, ...], _Step], ...]] = (
    (("private key",), _sub(_PRIVATE_KEY, _marker("private_key"))),
    (("eyj",), _sub(_JWT, _marker("jwt"))),
    (("sk-", "akia", "asia", "xox", "_"), _sub(_API_KEY, _marker("api_key"))),
    (("bearer",), _sub(_BEARER, lambda m: f"{m.group(1)} {_marker('bearer')}")),
    (("authorization",), _sub(_AUTH_HEADER, _mask_auth_header)),
    (("pass", "pwd", "secret", "key", "token"), _sub(_LABELLED_SECRET, _mask_labelled)),
    (("pass", "pwd"), _sub(_SPOKEN_SECRET, lambda m: m[1] + m[2] + _marker("secret"))),
    (("@",), _sub(_EMAIL, _marker("email"))),
    # IBANs before cards: an IBAN's digits could otherwise pass as a Luhn-valid card number.
    ((), partial(_mask_checked, pattern=_IBAN, is_valid=iban.is_valid, kind="iban")),
    ((), partial(_mask_checked, pattern=_CARD, is_valid=_is_card, kind="card")),
)


def _redact_unchecked(text: str) -> str:
    for gate, step in _RULES:
        lowered = text.lower()
        if not gate or any(word in lowered for word in gate):
            text = step(text)
    return _mask_phones(text)


def redact(text: str) -> str:
    """Return ``text`` with secrets and personal data replaced by ``[REDACTED:<kind>]`` markers.

    Idempotent: ``redact(redact(x)) == redact(x)``. Never raises and never returns the input
    unredacted: on any internal error the result is ``[REDACTED:redaction_failed]``.
    """
    try:
        if not isinstance(text, str):
            raise TypeError("redact() takes a str")
        return _redact_unchecked(text)
    except Exception:
        # Deliberately not logged here: a log call could pass through RedactingFilter and
        # fail the same way again, and the exception text may quote the secret.
        return FAILED


def redact_data(value: _T) -> _T:
    """Return a redacted copy of a JSON-like structure; the input is left unchanged.

    Strings are redacted wherever they sit in dicts, lists and tuples (rebuilt as plain dict,
    list and tuple). Dict keys are kept as they are; a string stored under a secret-looking
    key ("password", "api_key", "client_secret", ...) is masked whole, since a bare value
    carries no label for ``redact`` to see. Other values are returned untouched.
    """
    if isinstance(value, str):
        return cast(_T, redact(value))
    if isinstance(value, dict):
        return cast(_T, {key: _redact_item(key, item) for key, item in value.items()})
    if isinstance(value, list):
        return cast(_T, [redact_data(item) for item in value])
    if isinstance(value, tuple):
        return cast(_T, tuple(redact_data(item) for item in value))
    return value


def _redact_item(key: object, item: object) -> object:
    if isinstance(key, str) and isinstance(item, str) and _LABEL_KEY.search(key):
        return _marker("secret")
    return redact_data(item)


class RedactingFilter(logging.Filter):
    """Logging filter that redacts each record's final message, traceback and stack text.

    It never drops a record. Attach it to handlers, since a logger's own filters miss records
    propagated from child loggers: ``"()": "agent.redaction.RedactingFilter"`` in ``LOGGING``.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            # Mismatched %-args: the raw msg and args may still hold secrets.
            message = FAILED
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            # Formatters cache the traceback in exc_text and reuse it, so rendering it here
            # lets us redact exception messages before any handler formats the record.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if isinstance(record.exc_text, str):
            record.exc_text = redact(record.exc_text)
        if isinstance(record.stack_info, str):
            record.stack_info = redact(record.stack_info)
        for key, value in list(record.__dict__.items()):
            if key not in _LOG_RECORD_FIELDS:  # an ``extra`` field: formatters may print it
                record.__dict__[key] = redact_data(value)
        return True


# The attributes every LogRecord has; anything else on a record came through ``extra``.
_LOG_RECORD_FIELDS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
}
