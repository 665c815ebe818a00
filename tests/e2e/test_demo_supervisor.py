"""The demo's supervisor: a server left on a port never passes for its child, a child that
dies at start is reported in one line, and a re-opened log never gains NUL bytes."""

from __future__ import annotations

import functools
import os
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from demo.ports import port_is_free
from demo.run import answers
from demo.supervisor import Child, DemoError, Supervisor, open_log
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"hello from another program")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def supervisor(tmp_path: Path) -> Iterator[Supervisor]:
    sup = Supervisor(ROOT, tmp_path, start_timeout=3.0)
    yield sup
    sup.stop_all()


def test_a_server_that_is_not_the_childs_does_not_make_it_ready(supervisor: Supervisor) -> None:
    """Another program answering on the child's port (here: started after the port check,
    while the child itself never listens) is not taken for the child: no "ready", an error."""
    port = free_port()
    impostor: list[ThreadingHTTPServer] = []

    def probe() -> bool:
        if not impostor:
            impostor.append(ThreadingHTTPServer(("127.0.0.1", port), _Hello))
            threading.Thread(target=impostor[0].serve_forever, daemon=True).start()
        return answers(f"http://127.0.0.1:{port}/", "hello")

    try:
        with pytest.raises(DemoError, match=f"did not answer on port {port}"):
            supervisor.start(Child("gateway", "gateway", SLEEPER, port, probe))
        assert probe()  # the impostor did answer all along
    finally:
        for server in impostor:
            server.shutdown()
            server.server_close()


def test_a_child_that_dies_at_start_is_reported_in_one_line(supervisor: Supervisor) -> None:
    """A child that exits while starting (as on EADDRINUSE) fails the demo with one line that
    names it, its exit code and its last log line."""
    argv = [sys.executable, "-c", "import sys; print('OSError: address in use'); sys.exit(3)"]
    with pytest.raises(DemoError) as failure:
        supervisor.start(Child("gateway", "gateway", argv, free_port(), lambda: True))
    message = str(failure.value)
    assert "\n" not in message
    assert "the gateway" in message
    assert "exited with code 3 during start-up" in message
    assert "OSError: address in use" in message


def test_stop_all_ends_every_child_and_frees_its_port(supervisor: Supervisor) -> None:
    """After stop_all, no child process is left and the ports they listened on are free."""
    ports = [free_port(), free_port()]
    for port in ports:
        argv = [sys.executable, "-m", "demo.upstream", "--port", str(port)]
        probe = functools.partial(answers, f"http://127.0.0.1:{port}/")
        supervisor.start(Child(f"app {port}", f"app-{port}", argv, port, probe))
    pids = [child.proc.pid for child in supervisor.children if child.proc]
    supervisor.stop_all()
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists()
    assert all(port_is_free(port) for port in ports)


def test_a_log_reopened_while_an_old_process_writes_it_gets_no_nul_bytes(tmp_path: Path) -> None:
    """A process of an earlier run that still writes its log (at a far offset, as a file opened
    without O_APPEND does) leaves no NUL bytes in the new run's log, nor in the kept old one."""
    log = tmp_path / "gateway.log"
    orphan = log.open("wb")  # how the old demo opened logs: O_TRUNC, no O_APPEND
    orphan.write(b"x" * 4096)
    orphan.flush()
    new_fd = open_log(log)
    os.write(new_fd, b"new run\n")
    orphan.write(b"the orphan goes on\n")
    orphan.flush()
    os.write(new_fd, b"still the new run\n")
    os.close(new_fd)
    orphan.close()
    assert log.read_bytes() == b"new run\nstill the new run\n"
    assert b"\0" not in (tmp_path / "gateway.log.1").read_bytes()
