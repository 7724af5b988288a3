"""A disk cache for what the offline backend builds from the shipped corpus alone.

The corpus's judgement models and their held-out measurements depend on nothing but the
corpus files, this package's code and the library versions, yet each process used to train
them again (over a minute on two cores): every worker start, every management command, every
test session. They are now built once per corpus and code, kept under
``TRIAGE_MODEL_CACHE_DIR`` and loaded in about a second by every later process.

The file name carries a digest of everything the build reads, so a changed corpus, a changed
line of this package or another scikit-learn version builds afresh, never loads a stale
model; older files of the same name are removed. The files are pickles (``pickled``): the
folder must be as trusted as the code, which is why it lives beside it (``var/``) by default.
A folder that cannot be written costs only the rebuild, logged; an empty setting turns the
cache off.
"""

import contextlib
import logging
import os
import platform
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import TypeVar, cast

from django.conf import settings

from agent.engine.workflow import content_digest
from agent.workflows.support_triage import learning, pickled

logger = logging.getLogger(__name__)

T = TypeVar("T")

PACKAGE_DIR = Path(__file__).resolve().parent
LIBRARIES = ("scikit-learn", "scipy", "numpy", "joblib")


def build_key() -> str:
    """A digest of what a corpus build reads: the corpus, this package's code, the libraries."""
    sources = [path.read_text(encoding="utf-8") for path in sorted(PACKAGE_DIR.glob("*.py"))]
    versions = [f"{name}=={metadata.version(name)}" for name in LIBRARIES]
    return content_digest(learning.corpus_digest(), *sources, *versions, platform.python_version())


def cached_build(name: str, build: Callable[[], T]) -> T:
    """``build()``'s result, loaded from the cache folder when this corpus and code built it
    before, else built and stored there for the next process."""
    folder = settings.TRIAGE_MODEL_CACHE_DIR
    if not folder:
        return build()
    path = Path(folder) / f"{name}-{build_key()}.pickle"
    loaded = _load(path)
    if loaded is not _MISSING:
        return cast(T, loaded)
    with _building(path):  # processes that start together build once: the others wait, load
        loaded = _load(path)
        if loaded is not _MISSING:
            return cast(T, loaded)
        value = build()
        _store(path, name, value)
    return value


_MISSING = object()


def _load(path: Path) -> object:
    try:
        return pickled.loads(path.read_bytes())
    except (FileNotFoundError, NotADirectoryError):  # not built yet
        return _MISSING
    except Exception:  # a truncated or foreign file: rebuilt and replaced, never trusted
        logger.warning("unreadable model cache %s: rebuilding it", path, exc_info=True)
        return _MISSING


@contextlib.contextmanager
def _building(path: Path) -> Iterator[None]:
    """An exclusive lock on ``<path>.lock`` while one process builds (POSIX ``flock``, released
    when the process dies). Without ``fcntl`` (Windows), or a folder to hold the lock, each
    process builds on its own, as before."""
    try:
        import fcntl

        path.parent.mkdir(parents=True, exist_ok=True)
        lock = path.with_name(f".{path.name}.lock").open("a")
    except (ImportError, OSError):
        yield
        return
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _store(path: Path, name: str, value: object) -> None:
    """Written to a temporary name and renamed, so a process that reads meanwhile sees the
    whole file or none; two processes building at once both write, the last rename wins."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_bytes(pickled.dumps(value))
        os.replace(temporary, path)
        lock = path.with_name(f".{path.name}.lock")
        older = [*path.parent.glob(f"{name}-*.pickle"), *path.parent.glob(f"{name}-*.joblib")]
        for stale in [*older, *path.parent.glob(f".{name}-*.lock")]:
            if stale not in (path, lock):
                stale.unlink(missing_ok=True)
    except OSError:
        logger.warning("cannot write the model cache %s: each process builds its own", path)
        with contextlib.suppress(OSError):  # there may be no folder to hold it
            temporary.unlink()
