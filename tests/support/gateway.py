"""The gateway under test as a real subprocess: `python -m gateway run -c <file>`."""

from __future__ import annotations

import copy
import os
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import yaml

from tests.support.ports import free_port
from tests.support.processes import ManagedProcess

REPO_ROOT = Path(__file__).resolve().parent.parent.parent


class GatewayProcess:
    """One gateway process with its own YAML config file.

    `config` is the config as a dict; `listen.host` is forced to 127.0.0.1 and
    `listen.port` to `port` (default: a free port, unless the config names one).
    `.url` is known before `start()`, so a test can register the gateway's callback
    at the OP first and fill `.config` in afterwards. `start()` waits until
    GET <url><prefix>/healthz answers 200.
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        workdir: Path,
        *,
        name: str = "gateway",
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        start_timeout: float = 30.0,
    ) -> None:
        self.name = name
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config: dict[str, Any] = copy.deepcopy(dict(config))
        listen = self.config.setdefault("listen", {})
        self.port: int = port or int(listen.get("port") or 0) or free_port()
        listen.update(host="127.0.0.1", port=self.port)
        self.config_path = workdir / f"{name}.yaml"
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.start_timeout = start_timeout
        self.process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def prefix(self) -> str:
        return str(self.config.get("prefix", "/_gateway")).rstrip("/")

    @property
    def healthz_url(self) -> str:
        return f"{self.url}{self.prefix}/healthz"

    def write_config(self) -> Path:
        # The internal listener's default port (9464) is one per host: give each test
        # gateway its own, unless the test sets it.
        metrics = self.config.setdefault("metrics", {})
        if isinstance(metrics, dict) and "listen" not in metrics:
            metrics["listen"] = f"127.0.0.1:{free_port()}"
        self.config_path.write_text(yaml.safe_dump(self.config, sort_keys=False))
        return self.config_path

    def start(self) -> None:
        """Write the config file and start; raises with the log tail if it fails."""
        self.write_config()
        self.process = ManagedProcess(
            f"{self.name}:{self.port}",
            [sys.executable, "-m", "gateway", "run", "-c", str(self.config_path)],
            log_path=self.workdir / f"{self.name}.log",
            env=self.env,
            cwd=REPO_ROOT,
            ready_url=self.healthz_url,
            start_timeout=self.start_timeout,
        )
        self.process.start()

    def _proc(self) -> ManagedProcess:
        if self.process is None:
            raise RuntimeError(f"{self.name} was not started")
        return self.process

    @property
    def pid(self) -> int:
        return self._proc().pid

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.alive

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.returncode

    def stop(self) -> int | None:
        """SIGTERM (graceful), SIGKILL after the timeout; returns the exit status."""
        return None if self.process is None else self.process.stop()

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()

    def restart(self) -> None:
        """Stop, rewrite the config file from `.config`, start on the same port."""
        self.stop()
        self.start()

    def send_signal(self, sig: signal.Signals) -> None:
        self._proc().send_signal(sig)

    def log_text(self) -> str:
        """Everything the gateway wrote to stdout and stderr (all runs)."""
        return "" if self.process is None else self.process.log_text()

    def __repr__(self) -> str:
        return f"<GatewayProcess {self.name} {self.url} {'up' if self.alive else 'down'}>"


class GatewayFactory(Protocol):
    """The `gateway_factory` fixture's type (for annotating tests)."""

    def __call__(
        self,
        config: Mapping[str, Any],
        *,
        name: str = ...,
        port: int | None = ...,
        start: bool = ...,
        env: Mapping[str, str] | None = ...,
    ) -> GatewayProcess: ...
