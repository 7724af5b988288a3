"""Tests for agent.redaction: what gets masked, what must survive, and failing closed."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator

import pytest

from agent import redaction
from agent.redaction import FAILED, RedactingFilter, redact, redact_data

# Fake credentials are assembled from pieces so that secret scanners (push protection, the
# detect-secrets hook) do not flag this file; the assembled strings have the real shapes.
ANTHROPIC_KEY = "sk-ant-" + "api03-" + "Xq7fT2vL9mZ0pR4sK8wY1bN6cD3hJ5gA-" + "a1B2c3D4e5F6_g7H8"
OPENAI_KEY = "sk-" + "proj-" + "Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56"
OPENAI_LEGACY_KEY = "sk-" + "T3BlbkFJ" + "x9Yz8Wv7Ut6Sr5Qp4On3Ml2Kj1Ih0Gf9Ed8Cb7"
AWS_KEY_ID = "AKIA" + "IOSFODNN7EXAMPLE"
GITHUB_PAT = "ghp_" + "a1B2c3D4e5F6g7H8i9J0" * 2
GITHUB_OAUTH = "gho_" + "Z9y8X7w6V5u4T3s2R1q0" * 2
GITHUB_APP = "ghs_" + "Q1w2E3r4T5y6U7i8O9p0" * 2
GITHUB_FINE = "github_pat_" + "11ABCDEFG0" + "abcdefghijklmnopqrstuv_" + "WXYZ0123456789"
SLACK_BOT = "xoxb-" + "123456789012-1234567890123-" + "AbCdEfGhIjKlMnOpQrStUvWx"
SLACK_USER = "xoxp-" + "123456789012-123456789012-" + "123456789012-abcdef0123456789"
STRIPE_SECRET = "sk_" + "live_" + "51HqLyjWDarjtT1zdp7dcXyZ"
STRIPE_RESTRICTED = "rk_" + "live_" + "51HqLyjWDarjtT1zdp7dcAbC"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIn0"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
PEM = (
    "-----BEGIN " + "RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n"
    "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n"
    "-----END " + "RSA PRIVATE KEY-----"
)

POSITIVES: list[tuple[str, str]] = [
    # Provider keys and tokens.
    (f"my key is {ANTHROPIC_KEY} thanks", "my key is [REDACTED:api_key] thanks"),
    (f"ANTHROPIC_API_KEY={ANTHROPIC_KEY}", "ANTHROPIC_API_KEY=[REDACTED:api_key]"),
    (f"export OPENAI_API_KEY='{OPENAI_KEY}'", "export OPENAI_API_KEY='[REDACTED:api_key]'"),
    (f"old key {OPENAI_LEGACY_KEY}.", "old key [REDACTED:api_key]."),
    (f"aws_access_key_id = {AWS_KEY_ID}", "aws_access_key_id = [REDACTED:api_key]"),
    (f"id {AWS_KEY_ID} leaked", "id [REDACTED:api_key] leaked"),
    (f"token {GITHUB_PAT}", "token [REDACTED:api_key]"),
    (f"{GITHUB_OAUTH} and {GITHUB_APP}", "[REDACTED:api_key] and [REDACTED:api_key]"),
    (
        f"git clone https://{GITHUB_FINE}@github.com/x/y",
        "git clone https://[REDACTED:api_key]@github.com/x/y",
    ),
    (f"slack {SLACK_BOT} / {SLACK_USER}", "slack [REDACTED:api_key] / [REDACTED:api_key]"),
    (
        f"stripe {STRIPE_SECRET}, {STRIPE_RESTRICTED}",
        "stripe [REDACTED:api_key], [REDACTED:api_key]",
    ),
    # JWTs, bearer tokens, Authorization headers.
    (f"session={JWT};", "session=[REDACTED:jwt];"),
    (f"Authorization: Bearer {JWT}", "Authorization: Bearer [REDACTED:jwt]"),
    ("Authorization: Bearer 9f8e7d6c5b4a3f2e1d0c", "Authorization: Bearer [REDACTED:bearer]"),
    (
        "curl -H 'Authorization: bearer abc123xyz789'",
        "curl -H 'Authorization: bearer [REDACTED:bearer]'",
    ),
    ("sent bearer ya29.A0ARrdaM-abcdefghijklmnop", "sent bearer [REDACTED:bearer]"),
    ("Authorization: Basic dXNlcjpodW50ZXIy", "Authorization: Basic [REDACTED:secret]"),
    ('{"Authorization": "Bearer short"}', '{"Authorization": "Bearer [REDACTED:bearer]"}'),
    ("authorization=deadbeefcafe", "authorization=[REDACTED:secret]"),
    # Private key blocks, including one cut off before its END line.
    (f"key:\n{PEM}\nthanks", "key:\n[REDACTED:private_key]\nthanks"),
    (
        "-----BEGIN OPENSSH " + "PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ",
        "[REDACTED:private_key]",
    ),
    (
        "-----BEGIN " + "PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\npassword: hunter2",
        "[REDACTED:private_key]\npassword: [REDACTED:secret]",
    ),
    # Labelled secrets: the label stays, the value goes.
    ("password: hunter2", "password: [REDACTED:secret]"),
    ("Password=Tr0ub4dor&3, then", "Password=[REDACTED:secret], then"),
    ("password: it's,a;secret!", "password: [REDACTED:secret]"),
    ("Cookie: token=abc123; Path=/", "Cookie: token=[REDACTED:secret]; Path=/"),
    ("passwd=letmein", "passwd=[REDACTED:secret]"),
    ("pwd hunter22", "pwd [REDACTED:secret]"),
    ("my password is Summer2024!", "my password is [REDACTED:secret]"),
    ("secret: 'correct horse'", "secret: '[REDACTED:secret]'"),
    ("secret: correct horse", "secret: [REDACTED:secret] horse"),  # unquoted ends at a space
    ('{"client_secret": "s3cr3t value"}', '{"client_secret": "[REDACTED:secret]"}'),
    ("api_key=abc123def456", "api_key=[REDACTED:secret]"),
    ("X-Api-Key: 0a1b2c3d", "X-Api-Key: [REDACTED:secret]"),
    (
        "https://x.io/reset?token=f00ba4&lang=en",
        "https://x.io/reset?token=[REDACTED:secret]&lang=en",
    ),
    # E-mail addresses.
    ("mail jane.doe@example.com now", "mail [REDACTED:email] now"),
    ("<ops+alerts@mail.example.co.uk>", "<[REDACTED:email]>"),
    ("J_Smith-99@sub.example.org.", "[REDACTED:email]."),
    # Cards: Luhn-valid only, any common grouping.
    ("card 4111 1111 1111 1111 exp 12/27", "card [REDACTED:card] exp 12/27"),
    ("card 5555-5555-5555-4444.", "card [REDACTED:card]."),
    ("amex 378282246310005", "amex [REDACTED:card]"),
    (
        "https://pay.example.com/checkout?card=4111111111111111&cvc=1",
        "https://pay.example.com/checkout?card=[REDACTED:card]&cvc=1",
    ),
    ("card 4111 1111 1111 1111 12/27", "card [REDACTED:card] 12/27"),
    # IBANs: mod-97 checksum and country format.
    ("IBAN DE89 3704 0044 0532 0130 00 please", "IBAN [REDACTED:iban] please"),
    ("to GB82WEST12345698765432.", "to [REDACTED:iban]."),
    (
        "NL91 ABNA 0417 1643 00 / FR14 2004 1010 0505 0001 3M02 606",
        "[REDACTED:iban] / [REDACTED:iban]",
    ),
    ("DE89 3704 0044 0532 0130 00 1234", "[REDACTED:iban] 1234"),
    ("DE89 3704 0044 0532 0130 00 NL91 ABNA 0417 1643 00", "[REDACTED:iban] [REDACTED:iban]"),
    # Phone numbers: international and national forms with separators.
    ("call +44 20 7946 0958 tomorrow", "call [REDACTED:phone] tomorrow"),
    ("call +1 415 555 2671.", "call [REDACTED:phone]."),
    ("cell +4915123456789", "cell [REDACTED:phone]"),
    ("office (415) 555-0132 ext 12", "office [REDACTED:phone]"),
    ("desk 212-555-0100 or 415.555.2671", "desk [REDACTED:phone] or [REDACTED:phone]"),
    (
        "UK mobile 07911 123456, London 020 7946 0958",
        "UK mobile [REDACTED:phone], London [REDACTED:phone]",
    ),
    ("Paris +33 1 42 68 53 00", "Paris [REDACTED:phone]"),
    ("(+44) 20 7946 0958 or +44 (0)20 7946 0958", "[REDACTED:phone] or [REDACTED:phone]"),
    (
        "tel:+1-202-555-0143; toll-free 1-800-555-0199",
        "tel:[REDACTED:phone]; toll-free [REDACTED:phone]",
    ),
    ("Dublin +353 1 234 5678", "Dublin [REDACTED:phone]"),
    # Names where the text says whose they are: sign-offs and introductions, four languages.
    ("Kind regards,\nMaria Lopez", "Kind regards,\n[REDACTED:name]"),
    ("It still fails. Thanks, Tom", "It still fails. Thanks, [REDACTED:name]"),
    (
        "Best regards,\n-- \nPeter O'Brien\nAcme Ltd",
        "Best regards,\n-- \n[REDACTED:name]\nAcme Ltd",
    ),
    ("Regards, J. van Dijk (finance)", "Regards, [REDACTED:name] (finance)"),
    ("Saludos cordiales,\nAna García", "Saludos cordiales,\n[REDACTED:name]"),
    ("Mit freundlichen Grüßen\nJürgen Müller", "Mit freundlichen Grüßen\n[REDACTED:name]"),
    ("Cordialement,\n\nÉlodie Durand", "Cordialement,\n\n[REDACTED:name]"),
    (
        "Hi, my name is Jan de Vries and I cannot log in",
        "Hi, my name is [REDACTED:name] and I cannot log in",
    ),
    ("Hola, me llamo Lucía y no puedo entrar", "Hola, me llamo [REDACTED:name] y no puedo entrar"),
    ("Ich heiße Anna Schmidt.", "Ich heiße [REDACTED:name]."),
    (
        "Je m'appelle Luc Martin, client depuis 2019",
        "Je m'appelle [REDACTED:name], client depuis 2019",
    ),
    # Postal addresses by their shape in each language.
    ("Ship to 221B Baker Street, London NW1", "Ship to [REDACTED:address], London NW1"),
    ("I live at 1600 Pennsylvania Ave NW, Apt 4", "I live at [REDACTED:address]"),
    ("Livraison au 12 rue de la Paix, 75002 Paris", "Livraison au [REDACTED:address], 75002 Paris"),
    ("Envíenlo a Calle de Alcalá, 45, Madrid", "Envíenlo a [REDACTED:address], Madrid"),
    (
        "Lieferadresse: Berliner Straße 12a, 10115 Berlin",
        "Lieferadresse: [REDACTED:address], 10115 Berlin",
    ),
    ("Hauptstraße 5 ist falsch", "[REDACTED:address] ist falsch"),
    # Several kinds in one ticket.
    (
        "From bob@example.com: card 4111111111111111, phone +1 (415) 555-2671, password: x9",
        "From [REDACTED:email]: card [REDACTED:card], phone [REDACTED:phone], "
        "password: [REDACTED:secret]",
    ),
]

NEGATIVES: list[str] = [
    "Ticket #4312 is a duplicate of #4301",
    "Order ORD-88812 and invoice INV-20431 were refunded",
    "Shipped 2026-11-26, due 26/11/2026 or 11/26/2026",
    "Outage from 14:30 to 16:45:30 UTC",
    "Upgraded from 2.14.0 to v3.1.2.4",
    "Refund of $2,300.00 (EUR 1.234,56) for 3 seats",
    "Card 4111 1111 1111 1112 was declined",
    "Account 1234567812345678 is closed",
    # Ids in URL paths: Luhn-valid one time in ten, and not cards.
    "GET /api/orders/4111111111111111/ 404 and https://shop.example.com/o/79927398713008/track",
    "IBAN DE89 3704 0044 0532 0130 01 looks wrong",
    "Please send me a password reset link",
    "The password is incorrect and the password was changed yesterday",
    "Run pwd in the shell and share the secret sauce",
    "The skeleton key and task-ant are fine; ask about risk-assessment-2024-q3",
    "sk-learn is not a key",
    "He was the bearer of bad news",
    "I need authorization to open the billing page",
    "Server 192.168.1.100 returned 503 after 12345 ms",
    "Request id 550e8400-e29b-41d4-a716-446655440000",
    "PO 4500012345, build 20261126, ticket 1234567",
    "max_tokens=1024 and input_tokens: 523",
    "Hosts 10.20.30.40 and 172.16.254.1, MAC 00:1B:44:11:3A:B7",
    "Meeting 10:00-11:30 in room 4.12, logged at 2026-11-26T14:30:12Z",
    "ISBN 978-3-16-148410-0, SKU 123-456-7890, latency=0.123456 p99=0.234567",
    "commit 3f786850e387550fdab836ed7e6dc881de23001b",
    "The API key rotation is done; I am the secretary: Jane",
    # Sign-off words and street types that are not names or addresses.
    "Thanks, I will wait for your answer",
    "Thanks again for the quick help!",
    "Best Buy gift card not accepted",
    "Thanks, Support Team",
    "Kind regards,\nThe Billing Department",
    "Thanks Bob for the help",
    "Merci beaucoup pour votre aide",
    "My name is on the invoice twice",
    "The 3 Way Handshake fails; see our road map for 2027",
    "Wir sind auf Platz 2 im Ranking, Schritt 3 von 5",
    "La calle está cortada desde 2024",
    "Room 12 Main Hall, gate 3",
    "",
]


@pytest.mark.parametrize(("text", "expected"), POSITIVES)
def test_redact_masks_each_kind(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize("text", NEGATIVES)
def test_redact_leaves_look_alikes_unchanged(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize("text", [text for text, _ in POSITIVES] + NEGATIVES)
def test_redact_is_idempotent(text: str) -> None:
    once = redact(text)
    assert redact(once) == once


def test_redact_data_masks_nested_strings_and_keeps_shape() -> None:
    payload = {
        "ticket": 4312,
        "body": "reach me at jane@example.com",
        "tool_calls": [{"args": ("+44 20 7946 0958", 3.5, None, True)}],
        "headers": {"password": "hunter2", "api_key": "[REDACTED:secret]", "note": "ok"},
        "cookies": {"csrftoken": "abc", "max_tokens": "1024"},
    }
    result = redact_data(payload)
    assert result == {
        "ticket": 4312,
        "body": "reach me at [REDACTED:email]",
        "tool_calls": [{"args": ("[REDACTED:phone]", 3.5, None, True)}],
        "headers": {
            "password": "[REDACTED:secret]",
            "api_key": "[REDACTED:secret]",
            "note": "ok",
        },
        "cookies": {"csrftoken": "[REDACTED:secret]", "max_tokens": "1024"},
    }
    assert payload["body"] == "reach me at jane@example.com"  # the input is not mutated
    assert redact_data(result) == result


def test_redact_fails_closed_when_a_step_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(text: str) -> str:
        raise RuntimeError(text)

    monkeypatch.setattr(redaction, "_mask_phones", explode)
    secret = f"key {ANTHROPIC_KEY} phone +44 20 7946 0958"
    assert redact(secret) == FAILED
    assert redact_data({"a": [secret]}) == {"a": [FAILED]}


def test_redact_fails_closed_on_a_non_string() -> None:
    assert redact(b"password: hunter2") == FAILED  # type: ignore[arg-type]


def test_phone_check_budget_masks_the_overflow_unverified() -> None:
    # Past the budget candidates are masked without libphonenumber: bounded cost, never a leak.
    text = ", ".join(["+44 20 7946 0958"] * 40 + ["555 12 34 567"] * 5)
    assert redact(text) == ", ".join(["[REDACTED:phone]"] * 45)


@pytest.fixture
def captured_logger() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("tests.agent.redaction")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)
    logger.propagate = True
    logger.setLevel(logging.NOTSET)


def test_logging_filter_redacts_formatted_message(
    captured_logger: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured_logger
    logger.info("user %s sent key %s", "jane@example.com", ANTHROPIC_KEY)
    assert stream.getvalue() == "INFO user [REDACTED:email] sent key [REDACTED:api_key]\n"


def test_logging_filter_redacts_traceback(
    captured_logger: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured_logger
    try:
        raise ValueError(f"bad password: hunter2 for {AWS_KEY_ID}")
    except ValueError:
        logger.exception("login failed for %s", "bob@example.com")
    output = stream.getvalue()
    assert output.startswith("ERROR login failed for [REDACTED:email]\nTraceback")
    assert "ValueError: bad password: [REDACTED:secret] for [REDACTED:api_key]" in output
    assert "hunter2" not in output
    assert AWS_KEY_ID not in output


def test_logging_filter_fails_closed_on_bad_format_args(
    captured_logger: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured_logger
    logger.info("password %s %s", "hunter2")  # one argument short: getMessage() raises
    assert stream.getvalue() == f"INFO {FAILED}\n"


def _seconds_per_call(text: str, runs: int) -> float:
    redact(text)  # warm up regex and phone metadata caches
    start = time.perf_counter()
    for _ in range(runs):
        redact(text)
    return (time.perf_counter() - start) / runs


def test_redact_is_fast_on_a_5kb_ticket() -> None:
    paragraph = (
        "Hi team, order ORD-88812 from 2026-11-26 14:30 failed again on v2.14.0. "
        "Please call me on +44 20 7946 0958 or mail jane.doe@example.com. "
        "The charge of $2,300.00 used card 4111 1111 1111 1111; refund to "
        "DE89 3704 0044 0532 0130 00. Our integration logs show the request with "
        f"Authorization: Bearer {JWT} returned 401 after the password reset link expired. "
        "Ticket #4312 has the screenshots and the full error output from the worker.\n"
    )
    ticket = (paragraph * (5000 // len(paragraph) + 1))[:5000]
    # About 3 ms here; the bound is loose so that a busy CI machine still passes.
    assert _seconds_per_call(ticket, runs=20) < 0.05


@pytest.mark.parametrize(
    "text",
    ["a-" * 2500, "password_" * 550, "1 " * 2500, "sk-" + "a-" * 2400, "@" + "a." * 2490],
)
def test_redact_stays_linear_on_pathological_input(text: str) -> None:
    # Guards against regex backtracking blow-ups (a quadratic label rule once took 0.9 s here).
    assert _seconds_per_call(text, runs=3) < 0.5


def test_logging_filter_redacts_extra_fields(
    captured_logger: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, _stream = captured_logger
    record_fields: list[dict] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            record_fields.append(dict(record.__dict__))

    keep = Keep()
    keep.addFilter(RedactingFilter())
    logger.addHandler(keep)
    try:
        logger.info(
            "triaged", extra={"requester": "jane@example.com", "data": {"k": ANTHROPIC_KEY}}
        )
    finally:
        logger.removeHandler(keep)

    assert record_fields[0]["requester"] == "[REDACTED:email]"
    assert record_fields[0]["data"] == {"k": "[REDACTED:api_key]"}


@pytest.mark.parametrize(
    "text",
    [
        "+44 20 7946 095",  # a digit short for London
        "+44 20 7946 09581",  # a digit long
        "+1 999 555 0100",  # an area code nobody was given
        "+49 30 1234",  # short, but a real country code and 8 digits
    ],
)
def test_every_possible_international_number_is_masked(text: str) -> None:
    """libphonenumber's *valid* misses these; a +CC number that could be a phone is masked."""
    assert redact(f"call {text} today") == "call [REDACTED:phone] today"


@pytest.mark.parametrize(
    "text",
    ['"jane doe"@example.com', '"j\\"d"@example.org', "jane@[192.0.2.1]", "ops@[IPv6:2001:db8::1]"],
)
def test_quoted_and_address_literal_emails_are_masked(text: str) -> None:
    assert redact(f"from {text} today") == "from [REDACTED:email] today"


@pytest.mark.parametrize(
    "text", ["score +12345 points", "version +3.1.2", "+99 999 999 (no such code)"]
)
def test_plus_signs_that_are_not_phones_stay(text: str) -> None:
    assert redact(text) == text
