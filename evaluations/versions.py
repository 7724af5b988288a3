"""What an evaluation was measured on: the code that decides and scores, the database, the
commit. Evidence that depends on where it was measured says where."""

import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

from django.db import connection

from agent.engine.workflow import content_digest
from tickets.selectors import ticket_history

ROOT = Path(__file__).resolve().parent.parent
# The code whose change can change an evaluation's result: the engine, the policy, redaction,
# running and storing a triage, every workflow (tools, retrieval, prompts, offline model), and
# the evaluation runner and scoring. A change anywhere here makes earlier evidence stale.
CODE_SOURCES = (
    "agent/engine",
    "agent/workflows",
    "agent/policy.py",
    "agent/redaction.py",
    "agent/services.py",
    "evaluations/runner.py",
    "evaluations/scoring.py",
)
SOURCE_SUFFIXES = {".py", ".md", ".json", ".txt"}


@cache
def code_version() -> str:
    """A digest of every source file in ``CODE_SOURCES`` (paths and contents). Unlike a commit,
    it sees uncommitted edits and ignores changes elsewhere (docs, admin pages)."""
    files = []
    for source in CODE_SOURCES:
        path = ROOT / source
        found = path.rglob("*") if path.is_dir() else [path]
        files += [f for f in found if f.suffix in SOURCE_SUFFIXES and "__pycache__" not in f.parts]
    parts = []
    for file in sorted(files):
        parts += [file.relative_to(ROOT).as_posix(), file.read_text(encoding="utf-8")]
    return "code@" + content_digest(*parts)


@cache
def git_commit() -> str:
    """The commit checked out, with ``+dirty`` when the code in ``CODE_SOURCES`` differs from
    it (docs or a recorded baseline do not count); empty outside git."""
    git = shutil.which("git")
    if git is None:
        return ""
    try:
        head = _git(git, "rev-parse", "--short=12", "HEAD")
        dirty = _git(git, "status", "--porcelain", "--", *CODE_SOURCES)
    except (OSError, subprocess.SubprocessError):
        return ""
    return head + ("+dirty" if dirty else "")


def _git(git: str, *args: str) -> str:
    completed = subprocess.run(
        [git, *args], cwd=ROOT, capture_output=True, text=True, timeout=5, check=True
    )
    return completed.stdout.strip()


def database_label() -> str:
    """The database the evaluation ran on, e.g. ``postgresql 15.19`` or ``sqlite 3.45.1``."""
    vendor = connection.vendor
    if vendor == "postgresql":
        version = int(getattr(connection, "pg_version", 0))  # e.g. 150019
        return f"postgresql {version // 10000}.{version % 10000}"
    if vendor == "sqlite":
        import sqlite3

        return f"sqlite {sqlite3.sqlite_version}"
    return vendor


def environment() -> dict[str, Any]:
    """Where an evaluation runs: its results depend on the database (retrieval differs between
    PostgreSQL and SQLite) and on the labelled history it retrieves from."""
    return {
        "database": database_label(),
        "database_vendor": connection.vendor,
        "commit": git_commit(),
        "history_tickets": ticket_history().count(),
    }
