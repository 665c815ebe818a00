"""Bodies stream through a real gateway process with flat memory (RSS read from /proc)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

MIB = 1024 * 1024
SIZE = 768 * MIB  # far more than the gateway may hold: its peak RSS must stay below LIMIT
LIMIT = 160 * MIB


def peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


@pytest.mark.slow
async def test_large_upload_and_download_stream_with_flat_memory(
    gateway_factory: Callable[..., Any], upstream: str
) -> None:
    """768 MiB up and 768 MiB down pass intact while the gateway's peak RSS stays small."""
    gw = gateway_factory({"routes": [{"path": "/", "upstream": upstream, "auth": "public"}]})
    digest = hashlib.sha256()

    async def body() -> AsyncIterator[bytes]:
        block = bytes(range(256)) * 4096  # 1 MiB
        for _ in range(SIZE // MIB):
            digest.update(block)
            yield block

    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(timeout=timeout) as client:
        async with client.post(f"{gw.url}/sink", data=body()) as response:
            result = await response.json()
        assert result["bytes"] == SIZE
        assert digest.hexdigest() == result["sha256"]
        received = 0
        async with client.get(f"{gw.url}/big?bytes={SIZE}") as response:
            assert response.status == 200
            async for chunk in response.content.iter_chunked(MIB):
                received += len(chunk)
    assert received == SIZE
    assert peak_rss(gw.pid) < LIMIT
