"""Entries shared through the store: only this deployment's sealed, fresh entries count."""

from __future__ import annotations

import base64
import logging

import pytest

from gateway import metrics
from gateway.crypto import KeyRing
from gateway.errors import StoreUnavailable
from gateway.login.logout_token import REPLAY_CACHE as LOGOUT_REPLAY_CACHE
from gateway.secret import Secret
from gateway.sessions.memory import MemoryStore
from gateway.sessions.shared import SharedEntry, SharedState
from gateway.tokens.dpop import REPLAY_CACHE as DPOP_REPLAY_CACHE
from gateway.tokens.introspection import SHARED_CACHE as INTROSPECTION_CACHE
from tests.idp.fake_provider import FakeClock

SECRET = "shared-state-test-secret-0123456789abcdef"


# Stored vectors: entries the gateway sealed (commit 277edb3, 2026-11-29) with SECRET under
# namespace ns1, each valid until FAR. A rolling upgrade runs old and new instances on one
# store: what the old ones wrote must still open (a renamed sealing context, purpose or
# cache name would turn every used logout-token jti into a miss). Never re-generate these
# to make a change pass; such a change needs a migration instead.
FAR = 4102444800.0  # 2100-01-01
VERDICT = {"active": True, "sub": "alice", "scope": "orders:read"}
STORED = {
    f"{INTROSPECTION_CACHE}:ns1:n1": "AbkzoCLU/Bj7dYuXNtr8zdo955zEWerqJEiXORdzWwPuEyZ/T9FMYGL2n7ZE"
    "zwmdJfvZWby4WcCHwst7zceZ1Npa+NDibF7MmF4zZfzo6cF6rp5Hyaq/nP6fc/lW8OpHwga6nxBT7wQubT9gjXErQ3s=",
    f"{LOGOUT_REPLAY_CACHE}:ns1:j1": "AbkzoCLXf663J/C8SuBZ4yW9uLaeOgk6ye9zJ+ASW4dIjvzDGNprm2aBvfDv"
    "GmcwpCEXb2T+jUTlx5uVAWvmCQ7G",
    f"{DPOP_REPLAY_CACHE}:ns1:j1": "AbkzoCKYJVihdTb4+wsNnFUfOqyWgBnwe8A+DPJsaGX+qN/DjpT7ywa978RRr1"
    "RpX3xRQzFpS9ovtVoF9HZz/+fp",
}


def state(
    store: MemoryStore, clock: FakeClock, secret: str = SECRET, namespace: str = "ns1"
) -> SharedState:
    return SharedState(store, KeyRing([Secret(secret)]), namespace, clock=clock)


def rejected(cache: str, reason: str) -> float:
    sample = metrics.REGISTRY.get_sample_value(
        "gateway_shared_cache_rejected_total", {"cache": cache, "reason": reason}
    )
    return sample or 0.0


async def test_an_entry_is_read_back_until_its_sealed_expiry() -> None:
    """A value put until T is read back with T before T, and is a (counted) miss at T even
    if the store still holds it."""
    clock = FakeClock(1000.0)
    store = MemoryStore(clock=clock)
    shared = state(store, clock)
    await shared.put("verdicts", "n1", {"active": True}, 1060.0)
    assert "verdicts:ns1:n1" == shared.key("verdicts", "n1")
    assert SharedEntry({"active": True}, 1060.0) == await shared.get("verdicts", "n1")
    clock.advance(59.5)
    assert SharedEntry({"active": True}, 1060.0) == await shared.get("verdicts", "n1")
    before = rejected("verdicts", "stale")
    await store.set("verdicts:ns1:n1", await store.get("verdicts:ns1:n1") or b"", 600)
    clock.advance(0.5)
    assert await shared.get("verdicts", "n1") is None
    assert 1.0 == rejected("verdicts", "stale") - before


async def test_nothing_is_written_for_a_past_expiry() -> None:
    """An entry whose expiry has already passed is not written at all."""
    clock = FakeClock(1000.0)
    store = MemoryStore(clock=clock)
    shared = state(store, clock)
    await shared.put("verdicts", "n1", 1, 1000.0)
    assert await store.get("verdicts:ns1:n1") is None
    await shared.put("verdicts", "n2", 1, 1000.5)
    assert await store.get("verdicts:ns1:n2") is not None


@pytest.mark.parametrize(
    "planted",
    [
        b'{"exp": 9999999999, "value": {"active": true}}',  # plain JSON
        b"",
        b"\x01" * 80,
    ],
)
async def test_forged_entries_are_counted_misses(planted: bytes) -> None:
    """A value this deployment did not seal is a miss, counted as invalid."""
    clock = FakeClock(1000.0)
    store = MemoryStore(clock=clock)
    shared = state(store, clock)
    await store.set("verdicts:ns1:n1", planted, 60)
    before = rejected("verdicts", "invalid")
    assert await shared.get("verdicts", "n1") is None
    assert 1.0 == rejected("verdicts", "invalid") - before


async def test_an_entry_moved_to_another_key_cache_or_deployment_does_not_open() -> None:
    """A genuine sealed value copied under another name, into another cache, or read by a
    deployment with another secret, opens nowhere but where it was written."""
    clock = FakeClock(1000.0)
    store = MemoryStore(clock=clock)
    shared = state(store, clock)
    await shared.put("verdicts", "n1", "yes", 1060.0)
    value = await store.get("verdicts:ns1:n1")
    assert value is not None
    await store.set("verdicts:ns1:n2", value, 60)
    await store.set("logout_jti:ns1:n1", value, 60)
    assert await shared.get("verdicts", "n2") is None
    assert await shared.get("logout_jti", "n1") is None
    assert (
        await state(store, clock, secret="another-secret-0123456789abcdef0123").get(
            "verdicts", "n1"
        )
        is None
    )
    other_namespace = state(store, clock, namespace="ns2")
    assert await other_namespace.get("verdicts", "n1") is None


async def test_a_claim_holds_once_until_released_or_expired() -> None:
    """The first claim of a name wins and the next is refused; after a release, or after
    its ttl, the name can be claimed again."""
    clock = FakeClock(1000.0)
    store = MemoryStore(clock=clock)
    a, b = state(store, clock), state(store, clock)
    assert await a.claim("logout_jti", "j1", 30)
    assert not await b.claim("logout_jti", "j1", 30)
    await a.release("logout_jti", "j1")
    assert await b.claim("logout_jti", "j1", 30)
    clock.advance(30)
    assert await a.claim("logout_jti", "j1", 30)


async def test_a_forged_or_stale_mark_is_replaced_not_obeyed() -> None:
    """A mark this deployment did not seal, or one past the expiry sealed in it, does not
    refuse the claim; the claim then holds."""
    clock = FakeClock(1000.0)
    store = MemoryStore(clock=clock)
    shared = state(store, clock)
    await store.set("logout_jti:ns1:j1", b"1", 600)
    assert await shared.claim("logout_jti", "j1", 30)
    assert not await shared.claim("logout_jti", "j1", 30)
    genuine = await store.get("logout_jti:ns1:j1")
    assert genuine is not None
    await store.set("logout_jti:ns1:j1", genuine, 600)  # the store keeps it past its seal
    clock.advance(31)
    assert await shared.claim("logout_jti", "j1", 30)


class ChangingStore(MemoryStore):
    """A store where another writer changes the mark between every read and write."""

    async def set_if_absent(self, key: str, value: bytes, ttl: float) -> bool:
        return False

    async def get(self, key: str) -> bytes | None:
        return b"someone else's mark"

    async def replace(self, key: str, expected: bytes, value: bytes, ttl: float) -> bool:
        self.replaced = getattr(self, "replaced", 0) + 1
        return False


async def test_a_mark_that_keeps_changing_is_a_store_outage() -> None:
    """If the mark changes under every attempt, after three tries the claim is a 503."""
    clock = FakeClock(1000.0)
    store = ChangingStore(clock=clock)
    with pytest.raises(
        StoreUnavailable, match=r"^shared logout_jti mark keeps changing; try again$"
    ):
        await state(store, clock).claim("logout_jti", "j1", 30)
    assert 3 == store.replaced


class VanishingStore(MemoryStore):
    """A store where the mark expires between the failed set and the read, once."""

    async def set_if_absent(self, key: str, value: bytes, ttl: float) -> bool:
        self.tries = getattr(self, "tries", 0) + 1
        return self.tries > 1

    async def get(self, key: str) -> bytes | None:
        return None


async def test_a_mark_that_vanishes_is_claimed_on_the_next_try() -> None:
    """A mark gone between the failed write and the read is no refusal: try again."""
    clock = FakeClock(1000.0)
    store = VanishingStore(clock=clock)
    assert await state(store, clock).claim("logout_jti", "j1", 30)
    assert 2 == store.tries


async def test_an_absent_entry_is_a_plain_miss() -> None:
    """Nothing stored is a miss, not a rejected entry: no count, no warning."""
    clock = FakeClock(1000.0)
    before = rejected("verdicts", "invalid")
    assert await state(MemoryStore(clock=clock), clock).get("verdicts", "absent") is None
    assert before == rejected("verdicts", "invalid")


async def test_ignored_entries_are_logged_with_reason_and_key_tail(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The operator's log names the cache, the last 12 characters of the key (never a
    whole token-derived name), the reason and why."""
    clock = FakeClock(1000.0)
    store = MemoryStore(clock=clock)
    shared = state(store, clock)
    await store.set("verdicts:ns1:abcdefghijklmnop", b"forged", 60)
    with caplog.at_level(logging.WARNING, logger="gateway.sessions.shared"):
        await shared.get("verdicts", "abcdefghijklmnop")
    await shared.put("verdicts", "n1", 1, 1001.0)
    value = await store.get("verdicts:ns1:n1")
    assert value is not None
    clock.advance(2)
    await store.set("verdicts:ns1:n1", value, 60)
    with caplog.at_level(logging.WARNING, logger="gateway.sessions.shared"):
        await shared.get("verdicts", "n1")
    assert [
        "shared verdicts entry efghijklmnop ignored (invalid): SealError",
        "shared verdicts entry dicts:ns1:n1 ignored (stale): past its sealed expiry",
    ] == [r.getMessage() for r in caplog.records]


async def test_entries_sealed_by_an_earlier_version_still_open() -> None:
    """After an upgrade, what the previous version wrote still counts: its introspection
    verdict is read back with its sealed expiry, and the logout-token and DPoP jtis it
    marked as used are still refused a second time (no entry is rejected as invalid)."""
    clock = FakeClock(1000.0)
    store = MemoryStore(clock=clock)
    shared = state(store, clock)
    for key, sealed in STORED.items():
        await store.set(key, base64.b64decode(sealed), 3600)
    before = {c: rejected(c, "invalid") for c in (INTROSPECTION_CACHE, LOGOUT_REPLAY_CACHE)}
    assert SharedEntry(VERDICT, FAR) == await shared.get(INTROSPECTION_CACHE, "n1")
    assert not await shared.claim(LOGOUT_REPLAY_CACHE, "j1", 60)
    assert not await shared.claim(DPOP_REPLAY_CACHE, "j1", 60)
    assert before == {c: rejected(c, "invalid") for c in before}
