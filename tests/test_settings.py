"""Production settings: fail fast without a secret, and pass Django's deployment checks."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))},
        "DJANGO_SETTINGS_MODULE": "triage.settings",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "",
        **env,
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_production_mode_refuses_to_start_without_a_secret_key() -> None:
    result = manage("check")

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is required when DJANGO_DEBUG is off" in result.stderr


@pytest.mark.parametrize(
    "extra",
    [
        {},
        # The configuration table allows turning the redirect off when the proxy redirects.
        {"DJANGO_SECURE_SSL_REDIRECT": "false"},
    ],
)
def test_check_deploy_is_clean_in_production_mode(extra: dict[str, str]) -> None:
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="triage.example.com",
        **extra,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_x_forwarded_proto_is_trusted_only_behind_a_declared_proxy() -> None:
    """Reachable directly, a client could claim HTTPS with the header."""
    code = "from django.conf import settings; print(settings.SECURE_PROXY_SSL_HEADER)"
    secret = secrets.token_urlsafe(50)

    direct = manage("shell", "-c", code, DJANGO_SECRET_KEY=secret)
    proxied = manage("shell", "-c", code, DJANGO_SECRET_KEY=secret, DJANGO_BEHIND_TLS_PROXY="true")

    assert direct.stdout.strip().splitlines()[-1] == "None", direct.stderr
    assert proxied.stdout.strip().splitlines()[-1] == "('HTTP_X_FORWARDED_PROTO', 'https')"


@pytest.mark.parametrize("minutes", ["0", "481"])
def test_a_claim_length_outside_a_shift_stops_startup(minutes: str) -> None:
    result = manage("check", DJANGO_DEBUG="true", TRIAGE_CLAIM_MINUTES=minutes)

    assert result.returncode != 0
    assert f"TRIAGE_CLAIM_MINUTES must be between 1 and 480 (a shift); got {minutes}." in (
        result.stderr
    )
