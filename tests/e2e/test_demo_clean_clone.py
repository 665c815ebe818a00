"""The README's demo command, run in a clean clone as a new user would: "Demo ready" only when
its own servers answer, a signal stops every one of them, a rerun on busy ports refuses.

Runtime: the SIGTERM run installs as a new user's does (npm ci, a .venv with the package and
its `demo` extra: about 30 s with warm pip and npm caches); the SIGINT run reuses this test
run's virtualenv (SETUP_USE_VENV) and the provider's npm packages (a symlink, when
package-lock.json is unchanged), about 5 s.
"""

from __future__ import annotations

import hashlib
import os
import queue
import random
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from demo.ports import port_is_free

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
READY_TIMEOUT = 300.0  # a full install included


def readme_demo_command() -> list[str]:
    """The demo command exactly as the README's "two commands" block gives it."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## The two commands", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    line = next(ln for ln in block.splitlines() if "demo.sh" in ln)
    return shlex.split(line.split("#", 1)[0])


def clone(tmp_path: Path, full_install: bool) -> Path:
    """A `git clone` of this repository's committed state, with no venv and no npm packages
    (or, unless `full_install`, this checkout's npm packages linked in)."""
    target = tmp_path / "oidc-gateway"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(target)], check=True)
    if not full_install:
        modules = (ROOT / "tests" / "op" / "node_modules").resolve()
        stamp = modules / ".package-lock.sha256"
        lock = (target / "tests" / "op" / "package-lock.json").read_bytes()
        if stamp.exists() and stamp.read_text().strip() == hashlib.sha256(lock).hexdigest():
            (target / "tests" / "op" / "node_modules").symlink_to(modules)
    return target


def free_base_port() -> int:
    """A base port with the four demo ports above it free, away from the OS's ephemeral range."""
    for _ in range(100):
        base = random.randrange(20000, 30000, 10)  # noqa: S311 - not a secret
        if all(port_is_free(base + i) for i in range(4)):
            return base
    raise RuntimeError("no four free ports in a row")


def demo_env(base: int, full_install: bool) -> dict[str, str]:
    env = {**os.environ, "DEMO_BASE_PORT": str(base)}
    env.pop("PYTHONPATH", None)  # the clone's own code, not this checkout's
    if not full_install:
        env["SETUP_USE_VENV"] = sys.prefix
    return env


class Output:
    """The demo's output, read line by line in a thread so a wait can time out."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, args=(proc.stdout,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line)
        self.lines.put(None)

    def until(self, needle: str, timeout: float) -> str:
        """All output so far, reading on until a line contains `needle`, EOF or the timeout."""
        deadline = time.monotonic() + timeout
        while not any(needle in line for line in self.seen):
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            self.seen.append(line)
        return "".join(self.seen)


def alive(pid: int) -> bool:
    """True for a running process (a zombie, exited but not reaped, counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def demo(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[subprocess.Popen[str], int, Path, dict[str, str]]]:
    """The README's demo command started in a fresh clone on four free ports."""
    full_install = request.node.callspec.params["full_install"]
    checkout = clone(tmp_path, full_install)
    base = free_base_port()
    env = demo_env(base, full_install)
    proc = subprocess.Popen(
        readme_demo_command(),
        cwd=checkout,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    yield proc, base, checkout, env
    if proc.poll() is None:
        proc.kill()  # its servers get SIGTERM from the kernel (PR_SET_PDEATHSIG)
        proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def login_page(base: int) -> str:
    """The sign-in page a browser reaches from the gateway's login URL (after the redirect)."""
    url = f"http://127.0.0.1:{base + 2}/_gateway/login"
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    with browser.open(url, timeout=10) as response:  # follows the redirects to the OP's form
        assert response.url.startswith(f"http://127.0.0.1:{base}/")
        return str(response.read().decode())


@pytest.mark.parametrize(
    ("stop_signal", "full_install"),
    [(signal.SIGTERM, True), (signal.SIGINT, False)],
    ids=["SIGTERM-full-install", "SIGINT-reused-venv"],
)
def test_readme_demo_from_a_clean_clone(
    demo: tuple[subprocess.Popen[str], int, Path, dict[str, str]],
    stop_signal: signal.Signals,
    full_install: bool,
) -> None:
    """The README's demo command in a fresh clone prints "Demo ready" with its servers up and
    the sign-in page answering; a rerun on the same ports prints one line, exits non-zero and
    never says ready; the signal then stops every server it started and frees their ports;
    no log holds a NUL byte."""
    proc, base, clone, env = demo
    output = Output(proc)
    printed = output.until("Ctrl-C stops everything", READY_TIMEOUT)
    assert "Demo ready" in printed, printed
    pids = [int(pid) for pid in re.findall(r"\b(\d+)\b", printed.split("Processes:", 1)[1])]
    assert len(pids) == 3, printed
    assert all(alive(pid) for pid in pids)
    assert 'name="login"' in login_page(base)

    rerun = subprocess.run(
        readme_demo_command(),
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    said = (rerun.stdout + rerun.stderr).strip().splitlines()
    assert rerun.returncode != 0
    assert len(said) == 1, said
    assert f"port {base} (for the OIDC provider) is in use" in said[0]
    assert "Demo ready" not in rerun.stdout + rerun.stderr
    assert all(alive(pid) for pid in pids)  # the rerun disturbed nothing
    assert 'name="login"' in login_page(base)

    proc.send_signal(stop_signal)
    assert proc.wait(timeout=30) == 0
    assert "every process it started has exited" in output.until("has exited", 5)
    assert not [pid for pid in pids if alive(pid)]
    assert all(port_is_free(base + i) for i in range(3))
    logs = list((clone / "demo" / "run").glob("*.log*"))
    assert logs
    for log in logs:
        assert b"\0" not in log.read_bytes(), log
    if full_install:  # the demo's venv holds none of the test toolchain
        site = next((clone / ".venv" / "lib").glob("python3*/site-packages"))
        assert (site / "aiohttp").is_dir()
        assert not [t for t in ("playwright", "mypy", "kubernetes_validate") if (site / t).exists()]
