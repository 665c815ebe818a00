"""A small supervisor for the real servers the tests run as subprocesses.

Synchronous on purpose (subprocess + polling), so session-scoped fixtures do not
depend on any event loop. Each process runs in its own session (process group),
logs stdout+stderr to a file, and is stopped by its pid: SIGTERM, then SIGKILL.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from tests.support.ports import port_open

# every process started and not yet stopped; killed at interpreter exit as a safety net
_LIVE: set[ManagedProcess] = set()


class ProcessError(RuntimeError):
    """A managed process failed to start, or died, or did not get ready in time."""


class ManagedProcess:
    """One subprocess with a log file and a readiness check.

    Readiness: `ready_port` (a TCP connect succeeds), `ready_url` (an HTTP GET answers
    `ready_status`), and/or `ready_check` (a callable returning True); all given ones
    must pass. `start()` waits for them, failing with the tail of the log.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | str | None = None,
        ready_port: int | None = None,
        ready_url: str | None = None,
        ready_status: int = 200,
        ready_check: Callable[[], bool] | None = None,
        start_timeout: float = 30.0,
        stop_timeout: float = 10.0,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.ready_port = ready_port
        self.ready_url = ready_url
        self.ready_status = ready_status
        self.ready_check = ready_check
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_start = 0  # offset in the log file where the current run began

    # -- state -------------------------------------------------------------------
    @property
    def pid(self) -> int:
        if self._proc is None:
            raise ProcessError(f"{self.name} has not been started")
        return self._proc.pid

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    # -- logs --------------------------------------------------------------------
    def log_text(self, *, current_run_only: bool = False) -> str:
        """The whole log (every run, restarts included), or only the current run's."""
        try:
            data = self.log_path.read_bytes()
        except FileNotFoundError:
            return ""
        if current_run_only:
            data = data[self._log_start :]
        return data.decode("utf-8", "replace")

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text(current_run_only=True).splitlines()[-lines:])

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> None:
        if self.alive:
            raise ProcessError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._log_start = log.tell()
            log.write(f"=== start {self.name}: {' '.join(self.argv)}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        _LIVE.add(self)
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise

    def wait_ready(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (self.start_timeout if timeout is None else timeout)
        last_error = "not checked yet"
        while True:
            if not self.alive:
                raise ProcessError(
                    f"{self.name} exited with status {self.returncode} before it was ready "
                    f"({last_error}); log {self.log_path}:\n{self.log_tail()}"
                )
            ok, last_error = self._is_ready()
            if ok:
                return
            if time.monotonic() > deadline:
                raise ProcessError(
                    f"{self.name} (pid {self.pid}) not ready after "
                    f"{timeout or self.start_timeout:.0f}s ({last_error}); "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def _is_ready(self) -> tuple[bool, str]:
        if self.ready_port is not None and not port_open(self.ready_port):
            return False, f"port {self.ready_port} not open"
        if self.ready_url is not None:
            try:
                with urllib.request.urlopen(self.ready_url, timeout=2) as resp:
                    status = resp.status
            except urllib.error.HTTPError as e:
                status = e.code
            except (OSError, urllib.error.URLError) as e:
                return False, f"GET {self.ready_url}: {e}"
            if status != self.ready_status:
                return False, f"GET {self.ready_url} answered {status}"
        if self.ready_check is not None:
            try:
                if not self.ready_check():
                    return False, "readiness check said no"
            except Exception as e:
                return False, f"readiness check failed: {e!r}"
        return True, "ready"

    def send_signal(self, sig: signal.Signals) -> None:
        if self.alive:
            os.kill(self.pid, sig)

    def stop(self, timeout: float | None = None) -> int | None:
        """SIGTERM the process, SIGKILL its process group if it does not exit in time.

        Returns the exit status (None if it was never started).
        """
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(self.stop_timeout if timeout is None else timeout)
            except subprocess.TimeoutExpired:
                self._kill_group(proc)
        self._reap_group(proc)
        _LIVE.discard(self)
        return proc.returncode

    def kill(self) -> None:
        """SIGKILL at once (a crash, for fault tests)."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            self._kill_group(proc)
        self._reap_group(proc)
        _LIVE.discard(self)

    def restart(self) -> None:
        self.stop()
        self.start()

    @staticmethod
    def _kill_group(proc: subprocess.Popen[bytes]) -> None:
        # the process leads its own session, so its group id is its pid
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)

    @staticmethod
    def _reap_group(proc: subprocess.Popen[bytes]) -> None:
        """Children the process left behind in its group (e.g. workers) are killed too."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)

    def __repr__(self) -> str:
        state = f"pid {self._proc.pid}" if self.alive and self._proc else "stopped"
        return f"<ManagedProcess {self.name} {state}>"


@atexit.register
def _kill_leftovers() -> None:
    for proc in list(_LIVE):
        proc.kill()


class ProcessBacked:
    """A test service run by one ManagedProcess: the lifecycle calls are the process's."""

    process: ManagedProcess

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.alive

    def start(self) -> None:
        self.process.start()

    def stop(self) -> None:
        self.process.stop()

    def kill(self) -> None:
        self.process.kill()

    def log_text(self) -> str:
        return self.process.log_text()
