"""Proxy mode: every attack, raw, through a gateway in front of each real upstream.

Judged by what the upstream served and read (tests/differential/attacks.py::problems).
"""

from __future__ import annotations

import pytest

from tests.differential.attacks import ATTACKS, Attack, problems, send, verdict
from tests.support.gateway import GatewayProcess
from tests.support.real_upstreams import PROBE_KINDS


@pytest.mark.parametrize("upstream", list(PROBE_KINDS))
@pytest.mark.parametrize("attack", ATTACKS, ids=lambda a: a.id)
async def test_attack_through_proxy_reaches_nothing_protected(
    attack: Attack, upstream: str, proxy_gateways: dict[str, GatewayProcess]
) -> None:
    """Without credentials, the gateway refuses the attack or the upstream serves only a
    public resource, with the request's own method and no client-chosen identity."""
    gw = proxy_gateways[upstream]
    reply = await send(gw.port, attack.request())
    assert not problems(attack, reply), verdict(attack, reply, f"gateway -> {upstream}")
