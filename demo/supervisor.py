"""Start the demo's servers, know they are ours and ready, and stop every one of them.

Each child runs in its own session (so a signal reaches its whole process group, and a
terminal's Ctrl-C reaches only us, who stop the children in order), gets SIGTERM from the
kernel if the demo itself dies (PR_SET_PDEATHSIG), and counts as ready only when it is alive
and a process of ITS session listens on its port and answers its probe: an older server
left on the port can never pass for it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from demo.ports import describe_holder, listens_in_session, port_is_free, proc_available

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
PR_SET_PDEATHSIG = 1
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


class DemoError(Exception):
    """The demo cannot go on; the message is the one line the user sees."""


class StopRequested(BaseException):
    """A stop signal arrived (BaseException: no `except Exception` swallows it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@dataclass
class Child:
    """One server of the demo: how to start it, where it listens, how to ask if it is up."""

    name: str  # as the user reads it: "OIDC provider"
    log_name: str  # its log: demo/run/<log_name>.log
    argv: Sequence[str]
    port: int
    probe: Callable[[], bool]  # True once the server answers as it should
    env: Mapping[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def open_log(path: Path) -> int:
    """A fresh log file, opened O_APPEND; the previous run's log is kept as `<name>.1`.

    Never truncated in place: a process that still held the old file at some offset would
    write there and fill the gap with NUL bytes. O_APPEND makes every write land at the end.
    """
    if path.exists():
        path.replace(path.with_name(path.name + ".1"))
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)


def _child_setup() -> None:
    """Runs in the child between fork and exec: undo our signal block; die with the demo."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


@contextmanager
def signals_blocked() -> Iterator[None]:
    """Hold stop signals, so none lands between a child's fork and our record of its pid."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    # further stop signals wait (blocked) while we stop the children; we exit after that
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    raise StopRequested(signum)


class Supervisor:
    """The demo's children: started in order, checked, watched, and stopped together."""

    def __init__(self, root: Path, run_dir: Path, start_timeout: float = START_TIMEOUT) -> None:
        self.root = root
        self.run_dir = run_dir
        self.start_timeout = start_timeout
        self.children: list[Child] = []

    @staticmethod
    def stop_on_signals() -> None:
        """Turn SIGTERM, SIGINT and SIGHUP into StopRequested in the main thread."""
        for signum in STOP_SIGNALS:
            signal.signal(signum, _raise_stop)

    def refuse_busy_ports(self, ports: Mapping[str, int]) -> None:
        """Fail with one line naming the first busy port, its use and its holder if known."""
        for name, port in ports.items():
            if not port_is_free(port):
                holder = describe_holder(port)
                by = f" by {holder}" if holder else ""
                raise DemoError(
                    f"port {port} (for the {name}) is in use{by}; stop that program "
                    "or move the demo's ports (DEMO_BASE_PORT, see --help)"
                )

    def start(self, child: Child) -> None:
        """Start one child and wait until it is ready; fail with one line if it is not."""
        self.refuse_busy_ports({child.name: child.port})
        child.log_path = self.run_dir / f"{child.log_name}.log"
        log_fd = open_log(child.log_path)
        try:
            with signals_blocked():
                child.proc = _spawn(child, self.root, log_fd)
                self.children.append(child)
        except OSError as exc:  # the program itself is missing or not executable
            raise DemoError(f"cannot start the {child.name} ({child.argv[0]}): {exc}") from exc
        finally:
            os.close(log_fd)
        self._wait_ready(child)

    def _wait_ready(self, child: Child) -> None:
        assert child.proc is not None
        check_owner = proc_available()
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if not child.alive:
                raise DemoError(self._died_message(child, "during start-up"))
            owned = not check_owner or listens_in_session(child.port, child.proc.pid)
            # alive again after the probe: a child that bound, answered and died is not ready
            if child.probe() and owned and child.alive:
                return
            time.sleep(0.2)
        raise DemoError(
            f"the {child.name} (pid {child.proc.pid}) did not answer on port {child.port} "
            f"within {self.start_timeout:.0f} s; see {child.log_path}"
        )

    def _died_message(self, child: Child, when: str) -> str:
        assert child.proc is not None
        code = child.proc.returncode
        how = (
            f"was killed by {signal.Signals(-code).name}"
            if code < 0
            else f"exited with code {code}"
        )
        return (
            f"the {child.name} (pid {child.proc.pid}) {how} {when}: "
            f"{last_line(child.log_path)}; see {child.log_path}"
        )

    def watch(self) -> None:
        """Return never; fail when a child exits on its own (a stop signal ends the wait)."""
        while True:
            for child in self.children:
                if not child.alive:
                    raise DemoError(self._died_message(child, "unexpectedly"))
            time.sleep(0.5)

    def stop_all(self) -> None:
        """SIGTERM each child's process group, newest first; SIGKILL what outlives the wait."""
        with signals_blocked():  # a second Ctrl-C does not cut this short
            running = [c for c in reversed(self.children) if c.alive]
            for child in running:
                _signal_group(child, signal.SIGTERM)
            deadline = time.monotonic() + STOP_TIMEOUT
            for child in running:
                assert child.proc is not None
                try:
                    child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    _signal_group(child, signal.SIGKILL)
                    child.proc.wait()
            for child in self.children:  # grandchildren of a child that exited first
                _signal_group(child, signal.SIGKILL)


def _spawn(child: Child, root: Path, log_fd: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # noqa: S603 - our own argv
        list(child.argv),
        stdin=subprocess.DEVNULL,
        stdout=log_fd,
        stderr=subprocess.STDOUT,
        cwd=root,
        env={**os.environ, **child.env},
        start_new_session=True,
        preexec_fn=_child_setup,  # safe: the demo runs no threads
    )


def _signal_group(child: Child, signum: int) -> None:
    assert child.proc is not None
    with suppress(ProcessLookupError):
        os.killpg(child.proc.pid, signum)


def last_line(path: Path | None) -> str:
    """The last non-empty line of a log, for a one-line error message."""
    try:
        lines = (
            [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
            if path
            else []
        )
    except OSError:
        lines = []
    return lines[-1].strip()[:200] if lines else "(no output)"
