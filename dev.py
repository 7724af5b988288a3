#!/usr/bin/env python3
"""Developer entry point; needs only Python 3.11+ (no make, no services).

python3 dev.py demo    set everything up and serve the demo on http://127.0.0.1:8000
python3 dev.py test    run the test suite (extra arguments go to pytest)
python3 dev.py gate    the release gate on a freshly seeded database (CI runs it too)
python3 dev.py chaos   kill -9 the worker, flush the broker, crash PostgreSQL, a faulty model
                       API, sustained HTTP load: every ticket still triaged once (needs
                       PostgreSQL and Redis on 127.0.0.1; --quick, --scenario NAME, ...)
python3 dev.py setup   create .venv and install the locked dependencies only
python3 dev.py lint    ruff and mypy
python3 dev.py lock    re-resolve requirements.lock from pyproject.toml
"""

import hashlib
import os
import secrets
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PYTHON = VENV / "bin" / "python"
LOCK = ROOT / "requirements.lock"
STAMP = VENV / ".requirements.lock.sha256"
ENV_FILE = ROOT / ".env"
DEMO_ADDRESS = "127.0.0.1:8000"
GATE_BASELINE = ROOT / "evaluations" / "baselines" / "release-offline.json"


def run(*args: str | Path, env: dict[str, str] | None = None, ok: tuple[int, ...] = (0,)) -> None:
    """Runs a command; an exit code outside ``ok`` stops dev.py with that code."""
    print("+", " ".join(str(arg) for arg in args), flush=True)
    code = subprocess.run([str(arg) for arg in args], cwd=ROOT, env=env).returncode
    if code not in ok:
        raise subprocess.CalledProcessError(code, [str(arg) for arg in args])


def setup() -> None:
    """Creates .venv and installs requirements.lock into it, unless already done."""
    if sys.version_info < (3, 11):
        sys.exit(f"Python 3.11 or newer is needed; this is {sys.version.split()[0]}.")
    if not PYTHON.exists():
        print(f"Creating the virtualenv in {VENV}", flush=True)
        venv.create(VENV, with_pip=True)
    digest = hashlib.sha256(LOCK.read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == digest:
        return
    run(PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    run(PYTHON, "-m", "pip", "install", "--quiet", "--require-hashes", "-r", LOCK)
    STAMP.write_text(digest)


def manage(*args: str) -> None:
    run(PYTHON, "manage.py", *args)


def write_local_env() -> None:
    """A .env for local use: debug on and a random secret key. Never committed."""
    if ENV_FILE.exists():
        return
    ENV_FILE.write_text(
        "# Local development settings written by `python3 dev.py demo`.\n"
        "DJANGO_DEBUG=true\n"
        f"DJANGO_SECRET_KEY={secrets.token_urlsafe(50)}\n"
    )
    print(f"Wrote {ENV_FILE.name} (local settings: debug on, random secret key)")


def demo() -> None:
    setup()
    write_local_env()
    manage("migrate", "--noinput")
    manage("seed_demo")
    manage("demo_users")
    print(
        f"\nServing the admin on http://{DEMO_ADDRESS}/ and the API on http://{DEMO_ADDRESS}/api/"
    )
    manage("runserver", DEMO_ADDRESS, "--noreload")


def test(pytest_args: list[str]) -> None:
    """The suite on every core (pytest-xdist; each worker has its own test database and Redis
    database), a test file to a worker so that its module fixtures are set up once; ``-n 0``
    among the arguments runs it in one process."""
    setup()
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    workers = ["--numprocesses", "auto", "--dist", "loadfile"]
    run(PYTHON, "-m", "pytest", *workers, "--cov", "--cov-report=term", *pytest_args, env=env)


def gate(database_urls: list[str], *, record: bool = False) -> None:
    """The release gate, as CI runs it: on each freshly seeded database (a new SQLite file when
    none is given), the frozen release suite on the offline backend, then ``release_check``,
    both against the recorded baseline. Fails on a regression, not on the verdict itself:
    the verdict is printed as it is. ``--record`` records the results as the new baseline."""
    setup()
    with tempfile.TemporaryDirectory(prefix="triage-gate-") as scratch:
        for url in database_urls or [f"sqlite:///{scratch}/gate.sqlite3"]:
            env = {
                **os.environ,
                "DATABASE_URL": url,
                "TRIAGE_AGENT_BACKEND": "offline",
                "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY", secrets.token_urlsafe(50)),
                "DJANGO_LOG_LEVEL": "WARNING",
            }
            flag = "--record-baseline" if record else "--regression-baseline"
            print(f"\n--- release gate on {url.split('@')[-1]}", flush=True)
            run(PYTHON, "manage.py", "migrate", "--noinput", "-v0", env=env)
            run(PYTHON, "manage.py", "seed_demo", env=env)
            run(PYTHON, "manage.py", "run_evals", "--suite", "release", "--backend", "offline",
                flag, GATE_BASELINE, env=env)  # fmt: skip
            # Recording, the verdict's own exit code (GO 0, SANDBOX 1, NO-GO 2) is expected.
            verdicts = (0, 1, 2) if record else (0,)
            run(PYTHON, "manage.py", "release_check", flag, GATE_BASELINE, env=env, ok=verdicts)


def chaos(chaos_args: list[str]) -> None:
    """The chaos run (``benchmarks/chaos.py``): a real worker killed, the broker flushed,
    PostgreSQL crashed, the model API faulty, sustained load over gunicorn; fails if a ticket
    is lost, stuck, half-written or triaged twice."""
    setup()
    run(PYTHON, "benchmarks/chaos.py", *chaos_args)


def lint() -> None:
    setup()
    run(PYTHON, "-m", "ruff", "check", ".")
    run(PYTHON, "-m", "ruff", "format", "--check", ".")
    run(PYTHON, "-m", "mypy", ".")


def lock() -> None:
    setup()
    run(PYTHON, "-m", "pip", "install", "--quiet", "uv")
    run(
        VENV / "bin" / "uv",
        "pip",
        "compile",
        "pyproject.toml",
        "--extra",
        "dev",
        "--generate-hashes",
        "--quiet",
        "-o",
        LOCK,
    )


def main() -> None:
    command, *rest = sys.argv[1:] or ["help"]
    try:
        if command == "demo":
            demo()
        elif command == "test":
            test(rest)
        elif command == "setup":
            setup()
        elif command == "gate":
            gate([arg for arg in rest if arg != "--record"], record="--record" in rest)
        elif command == "chaos":
            chaos(rest)
        elif command == "lint":
            lint()
        elif command == "lock":
            lock()
        else:
            print(__doc__)
            sys.exit(0 if command == "help" else 2)
    except subprocess.CalledProcessError as error:
        sys.exit(error.returncode)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
