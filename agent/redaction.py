"""Mask secrets and personal data before text is stored in a trace, logged, or sent to a model.

Masks are typed markers such as ``[REDACTED:email]``; on any internal error a string becomes
``[REDACTED:redaction_failed]`` (fail closed). Layers run in order (see ``_RULES``): own rules
for what no library knows (private keys, JWTs, provider API keys, bearer tokens, Authorization
headers, labelled secrets such as ``password: x``), e-mails, then IBANs and cards kept only if
``python-stdnum`` accepts their checksum, names where the text says whose they are (a sign-off,
an introduction), postal addresses by their shape, then phones via ``phonenumbers``
(libphonenumber).

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

# Names, where a ticket says whose they are: in a sign-off ("Kind regards,\nMaria Lopez",
# "Saludos, Ana") and in a self-introduction ("my name is Jan de Vries"), in English, Spanish,
# German and French. No offline library finds names (Presidio needs a spaCy model download),
# so a capitalised word is taken for a name only in those two places: "Thanks, I will wait",
# "Best Buy gift card" and "Thanks again" stay as they are, and so does a team's sign-off.
_SIGN_OFFS: Final = sorted(
    (
        "regards",
        "best regards",
        "kind regards",
        "warm regards",
        "warmest regards",
        "many thanks",
        "thanks",
        "thank you",
        "thanks so much",
        "thx",
        "cheers",
        "best",
        "best wishes",
        "all the best",
        "sincerely",
        "yours sincerely",
        "sincerely yours",
        "yours truly",
        "yours",
        "respectfully",
        "signed",
        "saludos",
        "un saludo",
        "saludos cordiales",
        "atentamente",
        "cordialmente",
        "gracias",
        "muchas gracias",
        "un abrazo",
        "grüße",
        "grüsse",
        "viele grüße",
        "beste grüße",
        "liebe grüße",
        "herzliche grüße",
        "freundliche grüße",
        "mit freundlichen grüßen",
        "mit freundlichen grüssen",
        "mfg",
        "gruß",
        "danke",
        "vielen dank",
        "cordialement",
        "bien cordialement",
        "merci",
        "merci beaucoup",
        "bien à vous",
        "amicalement",
        "salutations",
        "sincères salutations",
        "bonne journée",
    ),
    key=len,
    reverse=True,  # longest first: "kind regards" before "regards"
)
_INTRODUCTIONS: Final = (
    "my name is", "my name's", "me llamo", "mi nombre es", "ich heiße", "ich heisse",
    "mein name ist", "je m'appelle", "je m\u2019appelle", "mon nom est",
)  # fmt: skip
# A word that starts upper case (Latin scripts: ASCII, Latin-1, Latin Extended-A).
_CAPITALISED: Final = "[A-Z\u00c0-\u00d6\u00d8-\u00de\u0100-\u017f][\\w'\u2019-]*"
# Up to three words, initials and the particles of surnames ("Jan de Vries", "J. van Dijk").
_NAME_PARTICLE: Final = r"(?:de|da|del|della|di|du|la|le|van|von|der|den|ter|zu|y|bin|al)"
_NAME: Final = (
    rf"(?:{_CAPITALISED}|[A-Z]\.)"
    rf"(?:[ \t]+(?:{_NAME_PARTICLE}[ \t]+)?(?:{_CAPITALISED}|[A-Z]\.)){{0,2}}"
)
_SIGN_OFF: Final = rf"(?i:{'|'.join(map(re.escape, _SIGN_OFFS))})"
# A sign-off starts a line or a sentence; the name after it ends its line or clause.
_SIGNED_NAME: Final = re.compile(
    rf"((?:^|(?<=[.!?])[ \t]+)[ \t>]*{_SIGN_OFF}[ \t]*[,!.:]?[ \t]*"
    r"(?:(?:\r?\n[ \t>]*){1,3}(?:--[ \t]*(?:\r?\n[ \t>]*)+)?)?)"  # blank lines, a "-- " line
    rf"(?!{_SIGN_OFF}\b)({_NAME})(?=[ \t]*(?:$|[,(|\u2013-]))",
    re.MULTILINE,
)
_INTRODUCED_NAME: Final = re.compile(
    rf"((?i:\b(?:{'|'.join(map(re.escape, _INTRODUCTIONS))}))[ \t]+)({_NAME})"
)
# Words that sign for a team or say something else, not a person.
_NOT_NAMES: Final = frozenset(
    """team support department service services customer customers sales billing admin staff
    management inc ltd llc gmbh corp company again advance you all everyone much bye
    equipo soporte servicio abteilung kundenservice équipe""".split()
)
# Postal addresses, by their shape in each language: a house number and capitalised words
# before an English street type ("221B Baker Street", "1600 Pennsylvania Ave NW"); a number
# before a French street type ("12 rue de la Paix"); a Spanish street type, its name and a
# number ("Calle de Alcalá, 45"); a German street name and number ("Hauptstraße 5",
# "Berliner Straße 12a"). A street type needs a capitalised name beside it, so "3 Way
# Handshake", "road map" or "platz 2" alone are not addresses.
_PARTICLE: Final = r"(?:de|del|la|las|los|el|du|des|le|l'|d')"
_STREET_NAME: Final = (
    rf"(?:{_PARTICLE}[ \t]+)*{_CAPITALISED}(?:[ \t]+(?:{_PARTICLE}[ \t]+)*{_CAPITALISED}){{0,3}}"
)
_ADDRESS: Final = re.compile(
    r"\b\d{1,5}[A-Za-z]?(?:[ \t]+[A-Z][\w'.-]*){1,4}?[ \t]+"
    r"(?:Street|St|Avenue|Ave|Road|Rd|Lane|Ln|Drive|Dr|Boulevard|Blvd|Way|Court|Ct|Place|Pl"
    r"|Terrace|Close|Crescent|Square|Sq|Parkway|Pkwy|Highway|Hwy)\b\.?"
    r"(?:[ \t]+[NS]?[EW]?\b)?(?:,?[ \t]*(?:Apt|Apartment|Suite|Ste|Unit|Flat)\.?[ \t]*#?\w+)?"
    rf"|\b\d{{1,4}}(?:[ \t]*(?:bis|ter))?,?[ \t]+(?i:rue|avenue|boulevard|bd|chemin|allée"
    rf"|allee|impasse|place|quai|route|cours)[ \t]+{_STREET_NAME}"
    rf"|\b(?i:calle|c/|avenida|avda\.?|plaza|paseo|carrera|camino|ronda)[ \t]+{_STREET_NAME}"
    r",?[ \t]*(?:n[º°o]\.?[ \t]*)?\d{1,4}[A-Za-z]?\b"
    r"|\b[A-ZÄÖÜ][\wäöüß-]*(?:straße|strasse|str\.|gasse|allee|platz|weg|damm)[ \t]+\d{1,4}[a-z]?\b"
    r"|\b[A-ZÄÖÜ][\wäöüß-]*[ \t]+(?:Straße|Strasse|Str\.|Gasse|Allee|Platz|Weg|Damm)"
    r"[ \t]+\d{1,4}[a-z]?\b"
)


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


def _mask_name(match: re.Match[str]) -> str:
    """The name after a sign-off or an introduction, unless a word of it is not a name."""
    words = match.group(2).split()
    if any(word.strip(".").lower() in _NOT_NAMES for word in words):
        return match.group(0)
    return f"{match.group(1)}{_marker('name')}"


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
    ((), _sub(_SIGNED_NAME, _mask_name)),
    (
        ("name", "llamo", "nombre", "heiße", "heisse", "nom ", "appelle"),
        _sub(_INTRODUCED_NAME, _mask_name),
    ),
    ((), _sub(_ADDRESS, _marker("address"))),
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
