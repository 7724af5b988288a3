"""The services the chaos scenarios start and break themselves (``benchmarks/chaos.py``):
a throwaway PostgreSQL cluster, gunicorn, and the resident memory of a process tree.

Nothing here imports Django: the harness decides what to do with them. Every process started
here listens on 127.0.0.1 only and is stopped by its own ``stop``.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def port_in_use(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


class PostgresCluster:
    """A PostgreSQL cluster of its own, in a temporary directory, on ``127.0.0.1:<port>`` with
    trust authentication for ``postgres``: restarting it disturbs no one else (the machine's
    shared server on 5432 is never touched). PostgreSQL refuses to run as root, so as root its
    commands run as the ``postgres`` system user."""

    def __init__(self, *, port: int, log: Path) -> None:
        self.port, self.log = port, log
        self.bin = _postgres_bin()
        self.root = Path(tempfile.mkdtemp(prefix="triage-chaos-pg-"))
        self.data = self.root / "data"
        self.restarts = 0

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}"

    def start(self) -> None:
        if port_in_use(self.port):
            raise RuntimeError(f"port {self.port} is in use: choose another with --pg-port")
        if os.geteuid() == 0:
            shutil.chown(self.root, user="postgres")
        self._run("initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "--no-sync",
                  "-E", "UTF8", "--locale=C.UTF-8")  # fmt: skip
        self._pg_ctl("start")

    def crash(self, *, down_seconds: float) -> None:
        """``pg_ctl stop -m immediate`` (every connection cut, no clean shutdown, as in a
        crash), ``down_seconds`` without a server, then a start that replays the WAL."""
        self._pg_ctl("stop", "-m", "immediate")
        time.sleep(down_seconds)
        self._pg_ctl("start")
        self.restarts += 1

    def stop(self) -> None:
        """Stops the server (if it runs) and deletes its directory."""
        if (self.data / "postmaster.pid").exists():
            self._pg_ctl("stop", "-m", "immediate", check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def _pg_ctl(self, action: str, *extra: str, check: bool = True) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off"
        self._run("pg_ctl", action, "-D", self.data, "-w", "-t", "60", "-l", self.log,
                  "-o", options, *extra, check=check)  # fmt: skip

    def _run(self, program: str, *args: str | Path, check: bool = True) -> None:
        command = [str(self.bin / program), *map(str, args)]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
            self.log.touch()
            shutil.chown(self.log, user="postgres")
        subprocess.run(command, check=check, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _postgres_bin() -> Path:
    """The newest PostgreSQL server binaries (Debian keeps them out of PATH)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise RuntimeError("no PostgreSQL server binaries (initdb) found")
    return Path(initdb).parent


class Gunicorn:
    """gunicorn serving the project on 127.0.0.1, logging to a file."""

    def __init__(self, *, venv: Path, root: Path, env: dict[str, str], log: Path, workers: int):
        self.venv, self.root, self.env, self.log, self.workers = venv, root, env, log, workers
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("gunicorn has not started")
        return self.process.pid

    def start(self, *, timeout: float = 60.0) -> None:
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [str(self.venv / "bin" / "gunicorn"), "triage.wsgi:application",
                 "--bind", f"127.0.0.1:{self.port}", "--workers", str(self.workers),
                 "--access-logfile", "-", "--error-logfile", "-"],
                cwd=self.root, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}: {self.log}")
            if port_in_use(self.port):
                return
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not listen within {timeout:.0f} s: {self.log}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, 9)
            self.process.wait()


def rss_mib(pid: int) -> float:
    """Resident memory of a process and all its descendants, in MiB (Linux ``/proc``); 0 if it
    is gone. gunicorn's master and its workers, a Celery worker and its pool, count as one."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total_kib, pending = 0, [pid]
    while pending:
        current = pending.pop()
        total_kib += _vm_rss_kib(current)
        pending += children.get(current, [])
    return total_kib / 1024


def _vm_rss_kib(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0
