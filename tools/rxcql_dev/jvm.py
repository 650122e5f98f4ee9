"""The one JVM launcher: every server of this package (Cassandra nodes, Simulacron) runs through it.

A :class:`JvmProcess` is a JVM with a directory of its own, holding its pid file, its log (JVM
stdout and stderr) and a lock file. :meth:`JvmProcess.start` is the whole start-up: under the
lock, reuse a running one (after waiting until it answers), or check that its ports are free, let
the caller write its configuration and build its command line, launch it in a session of its own,
and wait until it answers, killing it again if it does not. :meth:`JvmProcess.stop` sends SIGTERM
(SIGCONT first, so a paused JVM can act on it) and SIGKILL after a timeout.

Also here: the cache directory, lock files and finding a JDK 17 (Cassandra 5.0 does not run on
Java 24+, which removed ``System.setSecurityManager``).

Environment:
    RXCQL_CACHE_DIR: the cache (default ``$XDG_CACHE_HOME/rxcql`` or ``~/.cache/rxcql``).
    JAVA17_HOME, JAVA_HOME: the JDK 17 to use (``JAVA_HOME`` only when it is a 17).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

__all__ = [
    "HOST",
    "LOG_TAIL_LINES",
    "Echo",
    "JvmProcess",
    "Launched",
    "Probe",
    "ToolError",
    "accepts_tcp",
    "alive",
    "cache_root",
    "default_echo",
    "find_java17",
    "java17_or_none",
    "locked",
    "tail",
    "terminate",
]

HOST = "127.0.0.1"
LOG_TAIL_LINES = 60

Echo = Callable[[str], None]
#: Asked while waiting for a JVM to answer, with the seconds left; returns what answered (the
#: node's ``release_version``, Simulacron's URL) or ``None`` for "not yet".
Probe = Callable[[float], str | None]


class ToolError(RuntimeError):
    """A server, its jars or its port could not be obtained, started or reached.

    Each server module raises its own subclass (``CassandraNodeError``, ``SimulacronError``).
    """


def default_echo(message: str) -> None:
    """Progress messages go to stderr, so stdout keeps only the commands' results."""
    print(message, file=sys.stderr, flush=True)


def cache_root() -> Path:
    """Where jars and server directories go: ``RXCQL_CACHE_DIR``, else ``~/.cache/rxcql``."""
    configured = os.environ.get("RXCQL_CACHE_DIR")
    if configured:
        return Path(configured).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return (base / "rxcql").resolve()


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock file, so two processes never download or start the same thing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --------------------------------------------------------------------------------------------
# Java 17


def _java_major(home: Path) -> int | None:
    release = home / "release"
    if release.is_file():
        match = re.search(r'^JAVA_VERSION="(\d+)', release.read_text(errors="replace"), re.M)
        if match:
            return int(match.group(1))
    java = home / "bin" / "java"
    if not java.is_file():
        return None
    try:
        result = subprocess.run(
            [str(java), "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)', result.stderr)
    return int(match.group(1)) if match else None


def java17_or_none() -> Path | None:
    """The home of a JDK 17 (see :func:`find_java17`), or ``None``."""
    candidates: list[Path] = []
    for variable in ("JAVA17_HOME", "JAVA_HOME"):
        value = os.environ.get(variable)
        if value:
            candidates.append(Path(value))
    jvm = Path("/usr/lib/jvm")
    if jvm.is_dir():
        homes = sorted(p for p in jvm.iterdir() if p.is_dir() and not p.is_symlink())
        candidates.extend(sorted(homes, key=lambda p: "17" not in p.name))
    for home in candidates:
        if (home / "bin" / "java").is_file() and _java_major(home) == 17:
            return home
    return None


def find_java17(error: type[ToolError] = ToolError) -> Path:
    """Return the home of a JDK 17: ``JAVA17_HOME``, ``JAVA_HOME`` if it is 17, or /usr/lib/jvm.

    Raises:
        ToolError: No Java 17 was found (as ``error``, the caller's subclass).
    """
    home = java17_or_none()
    if home is None:
        raise error("no Java 17 found (Cassandra 5.0 needs 17; 24+ cannot run it): set JAVA17_HOME")
    return home


# --------------------------------------------------------------------------------------------
# Processes

# Popen objects of JVMs started by this process, kept so they are reaped (no zombies, no
# ResourceWarning from a collected Popen whose child still runs).
_children: dict[int, subprocess.Popen[bytes]] = {}


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    child = _children.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] != "Z"


def terminate(pid: int, timeout: float) -> None:
    """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL and wait again."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if not alive(pid):
            break
    child = _children.pop(pid, None)
    if child is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=5)


def accepts_tcp(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether something accepts a TCP connection on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def tail(path: Path, lines: int = LOG_TAIL_LINES, width: int = 400) -> str:
    """Last ``lines`` lines of ``path``, each cut to ``width`` characters (the classpath line)."""
    try:
        with path.open(errors="replace") as handle:
            last = deque(handle, maxlen=lines)
    except OSError:
        return f"(no log at {path})\n"
    return "".join(line if len(line) <= width else line[:width] + " [...]\n" for line in last)


class Launched(NamedTuple):
    """What :meth:`JvmProcess.start` found or started.

    Attributes:
        pid: The JVM's process id.
        answer: What the probe returned once the JVM answered.
        started: ``True`` when this call launched the JVM, ``False`` when it was running.
        seconds: From launch until it answered (0 when it was running).
    """

    pid: int
    answer: str
    started: bool
    seconds: float


@dataclass(frozen=True)
class JvmProcess:
    """One JVM with a directory of its own (``run_dir``): pid file, log and lock file.

    Attributes:
        kind: ``cassandra`` or ``simulacron``: names the pid file and the log.
        name: What messages call it (``cassandra``, ``node2``, ``simulacron``).
        address: Where it answers, for messages (``127.0.0.1:9042``, ``http://...``).
        run_dir: Its directory.
        marker: A string its command line holds, so that a recycled pid is not taken for it.
        error: The exception type to raise (the caller's :class:`ToolError` subclass).
        awaited: What start-up waits for, in the timeout message (``CQL answer``).
        kill_timeout: Seconds SIGTERM gets when a start-up fails, before SIGKILL.
    """

    kind: str
    name: str
    address: str
    run_dir: Path
    marker: bytes
    error: type[ToolError] = ToolError
    awaited: str = "answer"
    kill_timeout: float = 10.0

    @property
    def pid_file(self) -> Path:
        return self.run_dir / f"{self.kind}.pid"

    @property
    def log_path(self) -> Path:
        return self.run_dir / f"{self.kind}.log"

    def lock(self) -> contextlib.AbstractContextManager[None]:
        """The lock that start and stop hold."""
        return locked(self.run_dir / ".lock")

    def running_pid(self) -> int | None:
        """The pid in the pid file if that process runs and is this JVM, else ``None``."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        if not alive(pid):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return pid
        return pid if self.marker in cmdline else None

    def wait_ready(
        self, pid: int, probe: Probe, timeout: float, interval: float = 0.25
    ) -> str | None:
        """Ask ``probe`` every ``interval`` s until it answers; ``None`` if the JVM exited or
        ``timeout`` passed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not alive(pid):
                return None
            answer = probe(deadline - time.monotonic())
            if answer:
                return answer
            time.sleep(interval)
        return None

    def start(
        self,
        prepare: Callable[[], Sequence[str]],
        probe: Probe,
        *,
        ports: Sequence[tuple[str, int]],
        wait_timeout: float,
        interval: float = 0.25,
        in_use_hint: str = "",
        echo: Echo = default_echo,
    ) -> Launched:
        """Reuse the running JVM, or launch one and wait until ``probe`` answers.

        Args:
            prepare: Called (under the lock) when a JVM is to be launched: fetches what it needs,
                writes its configuration, announces it on ``echo`` and returns the command line.
            probe: See :data:`Probe`.
            ports: ``(host, port)`` that must be free before a launch.
            wait_timeout: Seconds to wait for an answer.
            interval: Seconds between probes.
            in_use_hint: Appended to the message about a port in use (what to do instead).
            echo: Receives the log tail when start-up fails.

        Raises:
            ToolError: (as :attr:`error`) a running JVM does not answer, a port is in use, or the
                JVM did not answer in time (it is then killed).
        """
        with self.lock():
            pid = self.running_pid()
            if pid is not None:
                answer = self.wait_ready(pid, probe, wait_timeout, interval)
                if answer is None:
                    raise self.error(
                        f"{self.name} pid {pid} is alive but {self.address} does not answer; "
                        f"see {self.log_path} or run stop"
                    )
                return Launched(pid, answer, False, 0.0)
            self.pid_file.unlink(missing_ok=True)
            for host, port in ports:
                if accepts_tcp(host, port):
                    raise self.error(
                        f"{host}:{port} is in use by a process this script did not start"
                        + in_use_hint
                    )
            command = list(prepare())
            (self.run_dir / "command.txt").write_text(" ".join(command) + "\n", encoding="utf-8")
            began = time.monotonic()
            pid = self._launch(command)
            try:
                answer = self.wait_ready(pid, probe, wait_timeout, interval)
                if answer is None:
                    exited = _children[pid].poll()
                    reason = (
                        f"the JVM exited with status {exited}"
                        if exited is not None
                        else f"no {self.awaited} within {wait_timeout:.0f} s"
                    )
                    log = self.log_path
                    echo(f"--- last {LOG_TAIL_LINES} lines of {log} ---\n{tail(log)}---")
                    raise self.error(f"{self.name} did not start on {self.address}: {reason}")
            except BaseException:
                self._kill(pid, self.kill_timeout)
                raise
            return Launched(pid, answer, True, time.monotonic() - began)

    def _launch(self, command: Sequence[str]) -> int:
        """Start ``command`` in a session of its own, output to the log; write the pid file."""
        with self.log_path.open("wb") as log:
            child = subprocess.Popen(
                command,
                cwd=self.run_dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _children[child.pid] = child
        self.pid_file.write_text(f"{child.pid}\n", encoding="utf-8")
        return child.pid

    def _kill(self, pid: int, timeout: float) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
        terminate(pid, timeout)
        self.pid_file.unlink(missing_ok=True)

    def stop(self, timeout: float) -> bool:
        """SIGTERM the JVM (resumed first if paused), SIGKILL after ``timeout`` seconds.

        Returns:
            ``True`` if it was running.
        """
        with self.lock():
            pid = self.running_pid()
            if pid is not None:
                self._kill(pid, timeout)
            self.pid_file.unlink(missing_ok=True)
        return pid is not None

    def stop_at_exit(self, timeout: float) -> None:
        """Register an ``atexit`` guard that stops the JVM if it still runs then."""
        atexit.register(self._stop_quietly, timeout)

    def _stop_quietly(self, timeout: float) -> None:
        with contextlib.suppress(Exception):
            self.stop(timeout)

    def signal(self, sig: signal.Signals) -> int | None:
        """Send ``sig`` (SIGSTOP, SIGCONT) to the JVM; its pid, or ``None`` if it is not running."""
        pid = self.running_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        return pid
