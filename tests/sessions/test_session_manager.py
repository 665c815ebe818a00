"""SessionManager on each store: tickets, expiry, indexes, login state, locks."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest

from gateway.crypto import KeyRing
from gateway.secret import Secret
from gateway.sessions.codec import Ticket
from gateway.sessions.layout import sess_key
from gateway.sessions.manager import TOUCH_FRACTION, SessionManager
from gateway.sessions.store import SessionStore
from gateway.types import SessionRecord, TokenSet
from tests.sessions.common import SECRET, FakeClock, ManagerFactory

ISSUER = "https://idp.example.com"
IDLE, ABSOLUTE = 600.0, 3600.0


def record(
    sub: str = "alice", sid: str | None = "sid-1", access: str = "at-alice"
) -> SessionRecord:
    return SessionRecord(
        provider="idp",
        issuer=ISSUER,
        subject=sub,
        sid=sid,
        claims={"sub": sub, "email": f"{sub}@example.com", "groups": ["a", "b"]},
        tokens=TokenSet(
            access_token=access,
            id_token="id-" + access,
            refresh_token="rt-" + access,
            expires_at=1_700_000_300.0,
            scope="openid email",
            extra={"session_state": "xyz"},
        ),
        created_at=0,
        last_seen=0,
        expires_at=0,
    )


@pytest.fixture
def manager(make_manager: ManagerFactory) -> SessionManager:
    return make_manager(idle_timeout=IDLE, absolute_timeout=ABSOLUTE)


async def test_create_then_load_round_trips_the_record(
    manager: SessionManager, clock: FakeClock
) -> None:
    """The loaded record equals the created one, with times stamped by the manager."""
    ticket = await manager.create(record())
    loaded = await manager.load(ticket)
    assert loaded is not None
    expected = dataclasses.replace(
        record(), created_at=clock.now, last_seen=clock.now, expires_at=clock.now + ABSOLUTE
    )
    assert expected == loaded.record
    assert ticket == str(loaded.ticket)
    assert ticket.split(".")[0] == loaded.session_id


async def test_every_login_gets_a_new_ticket(manager: SessionManager) -> None:
    """Two creates for one user give unrelated ids and keys (no fixation)."""
    first, second = (
        Ticket.parse(await manager.create(record())),
        Ticket.parse(await manager.create(record())),
    )
    assert first is not None
    assert second is not None
    assert first.session_id != second.session_id
    assert first.session_key != second.session_key


async def test_an_earlier_expiry_given_by_the_caller_is_kept(
    manager: SessionManager, clock: FakeClock
) -> None:
    """expires_at before now + absolute_timeout is kept; later ones are capped."""
    short = dataclasses.replace(record(), expires_at=clock.now + 100)
    loaded = await manager.load(await manager.create(short))
    assert loaded is not None
    assert clock.now + 100 == loaded.record.expires_at
    clock.advance(101)
    assert None is await manager.load(str(loaded.ticket))
    long = dataclasses.replace(record(), expires_at=clock.now + 10 * ABSOLUTE)
    loaded = await manager.load(await manager.create(long))
    assert loaded is not None
    assert clock.now + ABSOLUTE == loaded.record.expires_at


def _flip(text: str, index: int) -> str:
    return text[:index] + ("A" if text[index] != "A" else "B") + text[index + 1 :]


async def test_forged_and_broken_tickets_load_as_none(manager: SessionManager) -> None:
    """Tampered, truncated, swapped-key and garbage tickets give None, never an error."""
    ticket = await manager.create(record("alice"))
    other = await manager.create(record("bob"))
    session_id, key = ticket.split(".")
    bad = [
        _flip(ticket, len(ticket) - 1),  # key changed
        _flip(ticket, 0),  # id changed
        ticket[:-1],
        ticket + "A",
        session_id,
        f"{session_id}.{other.split('.')[1]}",  # someone else's key
        f"{other.split('.')[0]}.{key}",
        f"{key}.{session_id}",
        "",
        ".",
        "a.b",
        "x" * 10_000,
        "é" * 87,
        ticket.replace(".", ":"),
        ticket + "\x00",
    ]
    for candidate in bad:
        assert None is await manager.load(candidate), candidate
    assert await manager.load(ticket) is not None


async def test_a_tampered_stored_value_loads_as_none(
    manager: SessionManager, store: SessionStore
) -> None:
    """Any changed byte of the stored value makes the session unreadable (None)."""
    ticket = Ticket.parse(await manager.create(record()))
    assert ticket is not None
    key = sess_key(ticket.handle)
    original = await store.get(key)
    assert original is not None
    for index in (0, 1, 3, 10, len(original) // 2, len(original) - 1):
        changed = bytearray(original)
        changed[index] ^= 0x01
        await store.set(key, bytes(changed), 60)
        assert None is await manager.load(str(ticket)), index
    await store.set(key, original[:20], 60)
    assert None is await manager.load(str(ticket))
    await store.set(key, original, 60)
    assert await manager.load(str(ticket)) is not None


async def test_idle_sessions_expire(manager: SessionManager, clock: FakeClock) -> None:
    """Unused for idle_timeout, a session is gone; used in time, it lives on."""
    ticket = await manager.create(record())
    clock.advance(IDLE * 0.9)
    assert await manager.load(ticket) is not None  # this use moves last_seen
    clock.advance(IDLE * 0.9)
    assert await manager.load(ticket) is not None
    clock.advance(IDLE)
    assert None is await manager.load(ticket)


async def test_sessions_end_at_the_absolute_timeout(
    manager: SessionManager, clock: FakeClock
) -> None:
    """However active, a session ends absolute_timeout after login."""
    ticket = await manager.create(record())
    while clock.now + IDLE / 2 < 1_700_000_000.0 + ABSOLUTE:
        clock.advance(IDLE / 2)
        assert await manager.load(ticket) is not None
    clock.advance(IDLE / 2)
    assert None is await manager.load(ticket)


async def test_last_seen_is_written_only_now_and_then(
    manager: SessionManager, store: SessionStore, clock: FakeClock
) -> None:
    """Loads within a fraction of idle_timeout do not rewrite the session."""
    parsed = Ticket.parse(ticket := await manager.create(record()))
    assert parsed is not None
    stored = await store.get(sess_key(parsed.handle))
    for _ in range(5):
        clock.advance(IDLE * TOUCH_FRACTION / 10)
        assert await manager.load(ticket) is not None
    assert stored == await store.get(sess_key(parsed.handle))
    clock.advance(IDLE * TOUCH_FRACTION)
    loaded = await manager.load(ticket)
    assert loaded is not None
    assert clock.now == loaded.record.last_seen
    assert stored != await store.get(sess_key(parsed.handle))


async def test_a_touch_never_overwrites_a_newer_save(
    manager: SessionManager, clock: FakeClock
) -> None:
    """A stale copy's last_seen update loses to a refresh saved meanwhile."""
    ticket = await manager.create(record())
    stale, fresh = await manager.load(ticket), await manager.load(ticket)
    assert stale is not None
    assert fresh is not None
    fresh.record.tokens = TokenSet(access_token="at-new", refresh_token="rt-new")
    assert await manager.save(fresh)
    clock.advance(IDLE * TOUCH_FRACTION * 2)
    await manager._touch(stale, clock.now)  # the race, stepped by hand
    loaded = await manager.load(ticket)
    assert loaded is not None
    assert loaded.record.tokens.refresh_token == "rt-new"


async def test_save_keeps_new_tokens(manager: SessionManager) -> None:
    """A saved record is what the next load returns."""
    ticket = await manager.create(record())
    loaded = await manager.load(ticket)
    assert loaded is not None
    loaded.record.tokens = TokenSet(access_token="at-2", refresh_token="rt-2", expires_at=5.0)
    assert await manager.save(loaded)
    again = await manager.load(ticket)
    assert again is not None
    assert loaded.record.tokens == again.record.tokens


async def test_save_does_not_bring_back_a_destroyed_session(manager: SessionManager) -> None:
    """A refresh finishing after a logout must not resurrect the session."""
    ticket = await manager.create(record())
    loaded = await manager.load(ticket)
    assert loaded is not None
    assert await manager.destroy(loaded.session_id)
    assert False is await manager.save(loaded)
    assert None is await manager.load(ticket)
    assert False is await manager.destroy(loaded.session_id)


async def test_destroy_by_sid_and_sub_touch_only_that_user(manager: SessionManager) -> None:
    """Back-channel logout by sid, and revoking by sub, end exactly the matching sessions."""
    a1 = await manager.create(record("alice", "sid-a1"))
    a2 = await manager.create(record("alice", "sid-a2"))
    a3 = await manager.create(record("alice", None))
    b1 = await manager.create(record("bob", "sid-b1"))
    b2 = await manager.create(record("bob", "sid-a1"))  # same sid, other user: still a match
    other_issuer = dataclasses.replace(record("alice", "sid-a2"), issuer="https://other")
    c1 = await manager.create(other_issuer)
    assert await manager.destroy_by_sid(ISSUER, "sid-a1") == 2
    assert [await manager.load(t) for t in (a1, b2)] == [None, None]
    assert await manager.destroy_by_sub(ISSUER, "alice") == 2
    for ticket in (a2, a3):
        assert None is await manager.load(ticket)
    for ticket in (b1, c1):
        assert await manager.load(ticket) is not None
    assert await manager.destroy_by_sub(ISSUER, "alice") == 0
    assert await manager.destroy_by_sid(ISSUER, "unknown") == 0


async def test_listing_shows_summaries_without_secrets(
    manager: SessionManager, clock: FakeClock
) -> None:
    """list_by_sub / list_by_sid give handles, times and sid, oldest first."""
    first = Ticket.parse(await manager.create(record("alice", "s1")))
    clock.advance(10)
    second = Ticket.parse(await manager.create(record("alice", "s2")))
    await manager.create(record("bob", "s1"))
    assert first is not None
    assert second is not None
    listed = await manager.list_by_sub(ISSUER, "alice")
    assert [first.handle, second.handle] == [s.handle for s in listed]
    assert [s.sid for s in listed] == ["s1", "s2"]
    assert listed[0].created_at + 10 == listed[1].created_at
    assert listed[0].created_at + ABSOLUTE == listed[0].expires_at
    assert first.handle[:12] == listed[0].short_id
    assert {"alice", "bob"} == {s.subject for s in await manager.list_by_sid(ISSUER, "s1")}
    assert await manager.destroy_by_handle(listed[0].handle) == 1
    assert [second.handle] == [s.handle for s in await manager.list_by_sub(ISSUER, "alice")]


async def test_sealed_with_an_old_key_still_opens_after_rotation(
    make_manager: ManagerFactory,
) -> None:
    """Sessions survive adding a new first secret; removing the old one ends them."""
    new = Secret("n" * 40)
    before = make_manager()
    ticket = await before.create(record())
    assert await make_manager(keyring=KeyRing([new, SECRET])).load(ticket) is not None
    assert None is await make_manager(keyring=KeyRing([new])).load(ticket)


async def test_login_state_is_taken_once(manager: SessionManager) -> None:
    """A pending login comes back once, to its binding and state; a wrong state leaves it."""
    data = {"state": "state-1", "nonce": "n", "verifier": "v", "return_to": "/x", "started": 1.5}
    await manager.put_login_state("binding-1", data, 60)
    assert None is await manager.take_login_state("binding-2", "state-1")
    assert None is await manager.take_login_state("binding-1", "state-2")
    assert data == await manager.pending_login("binding-1")
    assert data == await manager.take_login_state("binding-1", "state-1")
    assert None is await manager.take_login_state("binding-1", "state-1")
    assert None is await manager.pending_login("binding-1")


async def test_login_state_expires(manager: SessionManager) -> None:
    """Login state is gone after its TTL."""
    await manager.put_login_state("b", {"state": "s", "a": 1}, 0.1)
    await asyncio.sleep(0.3)
    assert None is await manager.take_login_state("b", "s")


async def test_refresh_lock_lets_one_in_and_the_rest_wait(manager: SessionManager) -> None:
    """One caller holds the lock; the others wait for its release, then get False."""
    events: list[str] = []

    async def refresh(name: str) -> bool:
        async with manager.refresh_lock("session-x", wait=5) as held:
            events.append(f"{name}:{held}")
            if held:
                await asyncio.sleep(0.3)
                events.append("released")
            return held

    started = time.monotonic()
    results = await asyncio.gather(*(refresh(str(i)) for i in range(4)))
    assert results.count(True) == 1
    assert events[1] == "released"  # every waiter came after the holder was done
    assert time.monotonic() - started < 2
    async with manager.refresh_lock("session-x") as held:
        assert held


async def test_refresh_lock_wait_is_bounded(manager: SessionManager) -> None:
    """A waiter gives up after `wait` seconds even if the holder never finishes."""
    async with manager.refresh_lock("session-y", wait=5) as held:
        assert held
        started = time.monotonic()
        async with manager.refresh_lock("session-y", wait=0.2) as second:
            assert not second
        assert 0.15 < time.monotonic() - started < 1


@pytest.mark.parametrize("state_id", ["", "x" * 513, "é-state", "with space", "\udcff"])
async def test_odd_state_ids_are_refused(manager: SessionManager, state_id: str) -> None:
    """A state id that put_login_state cannot have made reads as unknown."""
    assert await manager.take_login_state(state_id, "s") is None
    assert await manager.pending_login(state_id) is None
    with pytest.raises(ValueError, match="state id"):
        await manager.put_login_state(state_id, {"state": "s"}, 60)
    with pytest.raises(ValueError, match="state id"):
        await manager.put_login_state("binding", {"state": state_id}, 60)
