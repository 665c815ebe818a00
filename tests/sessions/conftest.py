"""Session-store fixtures: the memory store, and Redis standalone, Sentinel and Cluster.

Every Redis is a real redis-server: the shared one from tests/conftest.py, plus a
Sentinel (one master, one sentinel) and a three-master Cluster started here once.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis as redis_sync

from gateway.config.model import RedisConfig, Sessions
from gateway.crypto import KeyRing, random_token
from gateway.sessions.manager import SessionManager
from gateway.sessions.memory import MemoryStore
from gateway.sessions.redis import RedisStore
from gateway.sessions.store import SessionStore
from tests.sessions.common import SECRET, FakeClock, ManagerFactory, redis_store
from tests.support.ports import free_port, port_open
from tests.support.processes import ManagedProcess


@pytest.fixture
def prefix() -> str:
    """A key prefix of this test's own, so tests sharing one redis never meet."""
    return f"t-{random_token(6)}:"


@dataclass
class Deployment:
    """Config keys (besides key_prefix) that reach a Redis deployment."""

    config: dict[str, object]
    processes: list[ManagedProcess]


def _redis_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server not installed")
    return binary


def _start(name: str, argv: list[str], workdir: Path, port: int) -> ManagedProcess:
    process = ManagedProcess(
        name, argv, log_path=workdir / f"{name}.log", cwd=workdir, ready_port=port
    )
    process.start()
    return process


def _node_argv(port: int, *extra: str) -> list[str]:
    return [_redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", *extra]


@pytest.fixture(scope="session")
def redis_sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """One master watched by one sentinel (quorum 1), master name "mymaster"."""
    workdir = tmp_path_factory.mktemp("sentinel")
    master_port, sentinel_port = free_port(), free_port()
    master = _start("master", _node_argv(master_port), workdir, master_port)
    conf = workdir / "sentinel.conf"  # sentinel rewrites its config file: must be writable
    conf.write_text(
        f"port {sentinel_port}\nbind 127.0.0.1\n"
        f"sentinel monitor mymaster 127.0.0.1 {master_port} 1\n"
    )
    sentinel = _start(
        "sentinel", [_redis_binary(), str(conf), "--sentinel"], workdir, sentinel_port
    )
    config = {"url": "redis://ignored/0", "sentinel": [f"127.0.0.1:{sentinel_port}"]}
    yield Deployment({**config, "master_name": "mymaster"}, [sentinel, master])
    sentinel.stop()
    master.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """Three masters, slots spread by redis-cli --cluster create."""
    workdir = tmp_path_factory.mktemp("cluster")
    ports = [_cluster_port() for _ in range(3)]
    nodes = [
        _start(
            f"node-{port}",
            _node_argv(port, "--cluster-enabled", "yes", "--cluster-config-file", f"n{port}.conf"),
            workdir,
            port,
        )
        for port in ports
    ]
    addresses = [f"127.0.0.1:{port}" for port in ports]
    create = ["redis-cli", "--cluster", "create", *addresses, "--cluster-yes"]
    subprocess.run(create, check=True, capture_output=True, timeout=60)
    for port in ports:
        _wait_cluster_ok(port)
    yield Deployment({"url": f"redis://{addresses[0]}/0", "cluster": True}, nodes)
    for node in nodes:
        node.stop()


def _cluster_port() -> int:
    """A free port whose cluster-bus twin (port + 10000) is free too."""
    for _ in range(100):
        port = free_port()
        if port + 10_000 <= 65_535 and not port_open(port + 10_000):
            return port
    raise RuntimeError("no free port pair for a cluster node")


def _wait_cluster_ok(port: int) -> None:
    with redis_sync.Redis(port=port) as raw:
        for _ in range(200):
            if raw.cluster("info").get("cluster_state") == "ok":
                return
            time.sleep(0.05)
    raise RuntimeError(f"cluster node {port} never reported cluster_state:ok")


@pytest.fixture(
    params=[
        "memory",
        "redis",
        pytest.param("redis-sentinel", marks=pytest.mark.slow),
        pytest.param("redis-cluster", marks=pytest.mark.slow),
    ]
)
async def store(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[SessionStore]:
    """Each store implementation (and each Redis deployment) in turn."""
    made: SessionStore
    if request.param == "memory":
        made = MemoryStore()
    elif request.param == "redis":
        made = redis_store(request.getfixturevalue("redis_server"), prefix)
    else:
        deployment = request.getfixturevalue(request.param.replace("-", "_"))
        config = {**deployment.config, "key_prefix": prefix}
        made = RedisStore.from_config(RedisConfig.model_validate(config))
    yield made
    await made.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_manager(store: SessionStore, clock: FakeClock) -> ManagerFactory:
    """``make_manager(store=None, keyring=None, **settings)``: managers sharing ``store``."""

    def factory(
        store_: SessionStore | None = None, keyring: KeyRing | None = None, **settings: object
    ) -> SessionManager:
        values: dict[str, object] = {"cache_ttl": 0, **settings}
        return SessionManager(
            store_ if store_ is not None else store,
            keyring or KeyRing([SECRET]),
            Sessions.model_validate(values),
            clock,
        )

    return factory
