"""A real redis-server (the Debian package) on a free loopback port."""

from __future__ import annotations

import shutil
from pathlib import Path

import redis as redis_sync

from tests.support.ports import free_port
from tests.support.processes import ManagedProcess, ProcessBacked


class RedisServer(ProcessBacked):
    """redis-server on 127.0.0.1:`port`.

    `persistent=False` (default): no RDB, no AOF, data lives only in memory.
    `persistent=True`: AOF (`--appendonly yes --appendfsync always`) under `workdir`,
    so `stop()` + `start()` (same port) keeps the keys; for fault tests.
    """

    def __init__(self, workdir: Path, *, persistent: bool = False, port: int | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server not found (apt-get install redis-server)")
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.persistent = persistent
        self.port = port or free_port()
        argv = [
            binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(workdir),
            "--save",
            "",
            "--daemonize",
            "no",
            "--logfile",
            "",
        ]
        if persistent:
            argv += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            argv += ["--appendonly", "no"]
        self.process = ManagedProcess(
            f"redis:{self.port}",
            argv,
            log_path=workdir / "redis.log",
            cwd=workdir,
            ready_port=self.port,
            ready_check=self.ping,
        )

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis_sync.Redis:
        """A synchronous redis-py client (for setup and checks outside the event loop)."""
        return redis_sync.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def ping(self) -> bool:
        with self.client() as r:
            return bool(r.ping())

    def flush(self) -> None:
        with self.client() as r:
            r.flushall()

    def restart(self) -> None:
        self.process.restart()
