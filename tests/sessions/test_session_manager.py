"""SessionManager on each store: tickets, expiry, indexes, login state, locks."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable

import pytest

from gateway import metrics
from gateway.config.model import Sessions
from gateway.crypto import KeyRing
from gateway.log import subject_var
from gateway.secret import Secret
from gateway.sessions.codec import Ticket
from gateway.sessions.layout import lock_key, login_key, sess_key
from gateway.sessions.manager import TOUCH_FRACTION, SessionManager
from gateway.sessions.memory import MemoryStore
from gateway.sessions.store import SessionStore
from gateway.types import SessionRecord, TokenSet
from tests.sessions.common import SECRET, FakeClock, ManagerFactory, redis_store
from tests.support.redis import RedisServer

ISSUER = "https://idp.example.com"
STATE_ID_RULE = "a binding or state id is 1-512 visible ASCII characters"
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

    results = await asyncio.gather(*(refresh(str(i)) for i in range(4)))
    assert results.count(True) == 1
    assert events[1] == "released"  # every waiter came after the holder was done
    async with manager.refresh_lock("session-x") as held:
        assert held


async def test_refresh_lock_wait_is_bounded(manager: SessionManager) -> None:
    """A waiter gives up after `wait` seconds even if the holder never finishes."""
    async with manager.refresh_lock("session-y", wait=5) as held:
        assert held
        started = time.monotonic()
        async with asyncio.timeout(4):  # the holder never lets go: only `wait` ends this
            async with manager.refresh_lock("session-y", wait=0.2) as second:
                assert not second
        assert time.monotonic() - started >= 0.15  # it did wait (a slow machine only adds)


@pytest.mark.parametrize("state_id", ["", "x" * 513, "é-state", "with space", "\udcff"])
async def test_odd_state_ids_are_refused(manager: SessionManager, state_id: str) -> None:
    """A state id that put_login_state cannot have made reads as unknown."""
    assert await manager.take_login_state(state_id, "s") is None
    assert await manager.pending_login(state_id) is None
    with pytest.raises(ValueError, match=f"^{STATE_ID_RULE}$"):
        await manager.put_login_state(state_id, {"state": "s"}, 60)
    with pytest.raises(ValueError, match=f"^{STATE_ID_RULE}$"):
        await manager.put_login_state("binding", {"state": state_id}, 60)


async def test_a_login_without_a_state_is_refused(manager: SessionManager) -> None:
    """Pending login data must carry its state id: none is not read as a default one."""
    with pytest.raises(ValueError, match=f"^{STATE_ID_RULE}$"):
        await manager.put_login_state("binding", {"nonce": "n"}, 60)
    assert None is await manager.pending_login("binding")


# -- the session indexes: what logout finds sessions by ------------------------------------

SUB_INDEX_OF_ALICE = "idx:sub:24051d5dd064ab997a5bd0b8a57e7abaf02c08ebd9756a47bdc9cc024640c45d"
SID_INDEX_OF_SID_1 = "idx:sid:cca41b873a765a7f6e705dc56495d1a13c91149f666155bdf5d6cb39669cc469"


def full_record(sub: str = "alice", sid: str | None = "sid-1") -> SessionRecord:
    """A record with every field set (client id, claims time), as a login makes it."""
    return dataclasses.replace(record(sub, sid), client_id="gateway-client", claims_read_at=12.5)


def handle_of(ticket: str) -> str:
    parsed = Ticket.parse(ticket)
    assert parsed is not None
    return parsed.handle


async def settle(check: Callable[[], Awaitable[bool]]) -> None:
    """Wait for an invalidation message to arrive (a bounded poll, not a timing claim)."""
    for _ in range(2000):
        if await check():
            return
        await asyncio.sleep(0.002)
    pytest.fail("the invalidation never arrived")


def test_index_names_are_the_ones_the_previous_version_wrote(manager: SessionManager) -> None:
    """Index names are pinned (secret "s"*40): after an upgrade, a back-channel logout still
    finds the sessions logged in before it, and those sessions still count as indexed."""
    assert manager.sub_index(ISSUER, "alice") == SUB_INDEX_OF_ALICE
    assert manager.sid_index(ISSUER, "sid-1") == SID_INDEX_OF_SID_1


def test_index_names_cannot_be_computed_from_the_sub(manager: SessionManager) -> None:
    """A neighbour on the Redis knows issuer and sub but not the secret: the index name is
    neither a plain hash of them nor a MAC under the raw secret, and differs per kind,
    issuer and value."""
    plain = hashlib.sha256(f"{ISSUER}\x00alice".encode()).hexdigest()
    raw_mac = hmac.new(SECRET.reveal().encode(), f"{ISSUER}\x00alice".encode(), "sha256")
    name = manager.sub_index(ISSUER, "alice")
    assert plain not in name
    assert raw_mac.hexdigest() not in name
    others = {
        manager.sid_index(ISSUER, "alice"),
        manager.sub_index(ISSUER, "bob"),
        manager.sub_index("https://other.example.com", "alice"),
        manager.sub_index(ISSUER + "\x00alice", ""),
    }
    assert name not in others
    assert len(others) == 4


async def test_a_login_indexes_the_session_under_its_sub_and_sid(
    manager: SessionManager, store: SessionStore, clock: FakeClock
) -> None:
    """The store holds the member ``<handle>:<expiry>`` in the user's and the provider
    session's index; a session without sid only in the user's."""
    ticket = await manager.create(record("alice", "sid-1"))
    member = f"{handle_of(ticket)}:{int(clock.now + ABSOLUTE)}"
    assert {member} == await store.index_members(SUB_INDEX_OF_ALICE)
    assert {member} == await store.index_members(SID_INDEX_OF_SID_1)
    bare = await manager.create(record("carol", None))
    assert {f"{handle_of(bare)}:{int(clock.now + ABSOLUTE)}"} == await store.index_members(
        manager.sub_index(ISSUER, "carol")
    )


async def test_a_session_missing_from_its_user_index_is_refused(
    manager: SessionManager, store: SessionStore, caplog: pytest.LogCaptureFixture
) -> None:
    """Someone deletes the user's index entry in the store: the session counts as ended
    (not kept alive where logout cannot find it), and the log says why."""
    ticket = await manager.create(record("alice", "sid-1"))
    other = await manager.create(record("bob", "sid-b"))
    (member,) = await store.index_members(SUB_INDEX_OF_ALICE)
    await store.remove_from_index(SUB_INDEX_OF_ALICE, member)
    with caplog.at_level(logging.WARNING, logger="gateway.sessions.manager"):
        assert None is await manager.load(ticket)
    assert [f"session {handle_of(ticket)[:12]} is missing from its index: treated as ended"] == [
        r.getMessage() for r in caplog.records if r.name == "gateway.sessions.manager"
    ]
    assert await manager.load(other) is not None


async def test_a_session_missing_from_its_sid_index_is_refused(
    manager: SessionManager, store: SessionStore, caplog: pytest.LogCaptureFixture
) -> None:
    """Deleting only the provider session's index (what a back-channel logout uses) ends
    the session too; a session without sid needs only its user's index."""
    ticket = await manager.create(record("alice", "sid-1"))
    bare = await manager.create(record("alice", None))
    await store.remove_from_index(
        SID_INDEX_OF_SID_1, *await store.index_members(SID_INDEX_OF_SID_1)
    )
    with caplog.at_level(logging.WARNING, logger="gateway.sessions.manager"):
        assert None is await manager.load(ticket)
    assert "missing from its index: treated as ended" in caplog.text
    assert await manager.load(bare) is not None


async def test_a_planted_member_with_another_expiry_does_not_count(
    manager: SessionManager, store: SessionStore
) -> None:
    """Only the member the gateway wrote (handle and the session's own expiry) counts as
    indexed: a look-alike put back after a deletion does not revive the session."""
    ticket = await manager.create(record("alice", None))
    (member,) = await store.index_members(SUB_INDEX_OF_ALICE)
    await store.remove_from_index(SUB_INDEX_OF_ALICE, member)
    handle, _, expiry = member.partition(":")
    await store.add_to_index(SUB_INDEX_OF_ALICE, f"{handle}:{int(expiry) + 1}", 600)
    await store.add_to_index(SUB_INDEX_OF_ALICE, handle, 600)
    assert None is await manager.load(ticket)


async def test_a_session_in_one_of_its_indexes_under_an_old_secret_still_loads(
    make_manager: ManagerFactory, store: SessionStore
) -> None:
    """After a rotation the session is found in the index named under the old secret (the
    second name); removed from that one too, it is refused."""
    new = Secret("n" * 40)
    old_manager = make_manager(idle_timeout=IDLE, absolute_timeout=ABSOLUTE)
    ticket = await old_manager.create(record("alice", "sid-1"))
    rotated = make_manager(keyring=KeyRing([new, SECRET]), idle_timeout=IDLE)
    assert rotated.sub_index(ISSUER, "alice") != SUB_INDEX_OF_ALICE
    assert await rotated.load(ticket) is not None
    await store.remove_from_index(
        SID_INDEX_OF_SID_1, *await store.index_members(SID_INDEX_OF_SID_1)
    )
    assert None is await rotated.load(ticket)


async def test_logout_by_sid_or_sub_ends_sessions_of_both_secrets(
    make_manager: ManagerFactory, store: SessionStore
) -> None:
    """Sessions logged in before and after a rotation are all ended by one back-channel
    logout (counted), and their index entries under both secrets are gone."""
    new = Secret("n" * 40)
    before = await make_manager().create(record("alice", "sid-1"))
    rotated = make_manager(keyring=KeyRing([new, SECRET]))
    after = await rotated.create(record("alice", "sid-1"))
    listed = {s.handle for s in await rotated.list_by_sub(ISSUER, "alice")}
    assert {handle_of(before), handle_of(after)} == listed
    assert listed == {s.handle for s in await rotated.list_by_sid(ISSUER, "sid-1")}
    assert await rotated.destroy_by_sid(ISSUER, "sid-1") == 2
    assert [await rotated.load(t) for t in (before, after)] == [None, None]
    for name in (*rotated._indexes("sub", ISSUER, "alice"), SID_INDEX_OF_SID_1):
        assert set() == await store.index_members(name), name
    again = await rotated.create(record("alice", "sid-2"))
    older = await make_manager().create(record("alice", "sid-3"))
    assert await rotated.destroy_by_sub(ISSUER, "alice") == 2
    assert [await rotated.load(t) for t in (again, older)] == [None, None]


async def test_a_sid_equal_to_a_sub_ends_only_that_provider_session(
    manager: SessionManager,
) -> None:
    """Back-channel logout of sid "alice" does not end user alice's sessions, and
    logout of user "sid-1" does not end the sessions of provider session sid-1."""
    alice = await manager.create(record("alice", "sid-a"))
    by_sid = await manager.create(record("bob", "alice"))
    sid_1 = await manager.create(record("carol", "sid-1"))
    assert await manager.destroy_by_sid(ISSUER, "alice") == 1
    assert await manager.destroy_by_sub(ISSUER, "sid-1") == 0
    assert None is await manager.load(by_sid)
    assert await manager.load(alice) is not None
    assert await manager.load(sid_1) is not None


async def test_logout_leaves_no_index_entries_behind(
    manager: SessionManager, store: SessionStore, clock: FakeClock
) -> None:
    """A logout (by ticket, sid or sub) removes the session's members from every index,
    including members whose session had already gone."""
    one = await manager.create(record("alice", "sid-1"))
    assert await manager.destroy(one.split(".")[0])
    assert set() == await store.index_members(SUB_INDEX_OF_ALICE)
    assert set() == await store.index_members(SID_INDEX_OF_SID_1)
    tickets = [await manager.create(record("alice", f"sid-{i}")) for i in range(6)]
    gone = f"{'0' * 64}:{int(clock.now + 60)}"  # a member whose session no longer exists
    for i in range(20):  # many, so that some come before the live ones in any set order
        await store.add_to_index(SUB_INDEX_OF_ALICE, f"{i:064x}:{int(clock.now + 60)}", 600)
    assert await manager.destroy_by_sub(ISSUER, "alice") == 6
    assert set() == await store.index_members(SUB_INDEX_OF_ALICE)
    for i in range(6):
        assert set() == await store.index_members(manager.sid_index(ISSUER, f"sid-{i}"))
    assert [await manager.load(t) for t in tickets] == [None] * 6
    other = await manager.create(record("alice", "sid-x"))
    await store.add_to_index(manager.sid_index(ISSUER, "sid-x"), gone, 600)
    assert await manager.destroy_by_sid(ISSUER, "sid-x") == 1
    assert set() == await store.index_members(manager.sid_index(ISSUER, "sid-x"))
    assert set() == await store.index_members(SUB_INDEX_OF_ALICE)
    assert None is await manager.load(other)


async def test_ending_an_unknown_session_changes_nothing(
    manager: SessionManager, store: SessionStore
) -> None:
    """Ending a handle, sid or sub that has no session returns 0 and leaves others alone."""
    kept = await manager.create(record("alice", "sid-1"))
    assert await manager.destroy_by_handle("f" * 64) == 0
    assert await manager.destroy_by_sid(ISSUER, "sid-2") == 0
    assert await manager.destroy_by_sub(ISSUER, "bob") == 0
    assert False is await manager.destroy("unknown-session-id")
    assert await manager.load(kept) is not None
    assert len(await store.index_members(SUB_INDEX_OF_ALICE)) == 1


async def test_a_login_prunes_expired_members_from_the_users_index(
    manager: SessionManager, store: SessionStore, clock: FakeClock
) -> None:
    """A daily user's index keeps only members of sessions not yet at their expiry."""
    short = dataclasses.replace(record("alice", None), expires_at=clock.now + 100)
    first = handle_of(await manager.create(short))
    clock.advance(99)
    second = handle_of(await manager.create(record("alice", None)))
    assert {first, second} == {
        m.split(":")[0] for m in await store.index_members(SUB_INDEX_OF_ALICE)
    }
    clock.advance(1)  # the first session's expiry: its member goes at the next login
    third = handle_of(await manager.create(record("alice", None)))
    members = {m.split(":")[0] for m in await store.index_members(SUB_INDEX_OF_ALICE)}
    assert {second, third} == members


# -- expiry boundaries -----------------------------------------------------------------


async def test_a_session_ends_at_its_expiry_and_idle_limit_exactly(
    manager: SessionManager, clock: FakeClock
) -> None:
    """At exactly expires_at, or exactly idle_timeout after last use, it is gone."""
    short = dataclasses.replace(record(), expires_at=clock.now + 100)
    ticket = await manager.create(short)
    clock.advance(100)
    assert None is await manager.load(ticket)
    idle = await manager.create(record())
    clock.advance(IDLE)
    assert None is await manager.load(idle)


async def test_an_expiry_of_now_gets_the_full_absolute_timeout(
    manager: SessionManager, clock: FakeClock
) -> None:
    """A caller's expires_at that is not in the future is replaced by the absolute limit
    (not a session dead on arrival); one exactly at the limit stays the limit."""
    now = dataclasses.replace(record(), expires_at=clock.now)
    loaded = await manager.load(await manager.create(now))
    assert loaded is not None
    assert clock.now + ABSOLUTE == loaded.record.expires_at
    at_limit = dataclasses.replace(record(), expires_at=clock.now + ABSOLUTE)
    loaded = await manager.load(await manager.create(at_limit))
    assert loaded is not None
    assert clock.now + ABSOLUTE == loaded.record.expires_at


async def test_last_seen_is_written_once_the_touch_fraction_is_reached(
    manager: SessionManager, store: SessionStore, clock: FakeClock
) -> None:
    """At exactly idle_timeout * TOUCH_FRACTION since the last write, a load writes."""
    ticket = await manager.create(record())
    stored = await store.get(sess_key(handle_of(ticket)))
    clock.advance(IDLE * TOUCH_FRACTION)
    loaded = await manager.load(ticket)
    assert loaded is not None
    assert clock.now == loaded.record.last_seen
    assert stored != await store.get(sess_key(handle_of(ticket)))


async def test_save_of_an_expired_session_writes_nothing(
    manager: SessionManager, store: SessionStore, clock: FakeClock
) -> None:
    """A refresh finishing after the idle limit neither saves nor revives the session."""
    ticket = await manager.create(record())
    loaded = await manager.load(ticket)
    assert loaded is not None
    stored = await store.get(sess_key(loaded.handle))
    clock.advance(IDLE)
    loaded.record.tokens = TokenSet(access_token="late")
    assert False is await manager.save(loaded)
    assert stored == await store.get(sess_key(loaded.handle))


async def test_save_counts_as_use(manager: SessionManager, clock: FakeClock) -> None:
    """A session saved (refreshed) lives idle_timeout from the save, not from its last load."""
    ticket = await manager.create(record())
    loaded = await manager.load(ticket)
    assert loaded is not None
    clock.advance(IDLE * 0.9)
    assert await manager.save(loaded)
    clock.advance(IDLE * 0.9)
    again = await manager.load(ticket)
    assert again is not None
    assert clock.now == again.record.last_seen


# -- the per-instance cache --------------------------------------------------------------


@pytest.fixture
async def cached(make_manager: ManagerFactory) -> SessionManager:
    """A manager whose cache keeps sessions for longer than the idle timeout."""
    made = make_manager(idle_timeout=IDLE, absolute_timeout=ABSOLUTE, cache_ttl=2 * IDLE)
    await made.start()
    return made


async def test_the_cache_serves_a_copy_equal_to_the_stored_record(
    cached: SessionManager, store: SessionStore
) -> None:
    """A hit (the stored value is gone, the cache still has it) returns every field as
    stored, and a caller's change to its copy never reaches the next hit."""
    ticket = await cached.create(full_record())
    first = await cached.load(ticket)
    assert first is not None
    await store.delete(sess_key(first.handle))
    hit = await cached.load(ticket)
    assert hit is not None
    assert first.record == hit.record
    assert "gateway-client" == hit.record.client_id
    assert 12.5 == hit.record.claims_read_at
    assert ticket == str(hit.ticket)
    assert first.meta == hit.meta
    hit.record.tokens = TokenSet(access_token="changed")
    again = await cached.load(ticket)
    assert again is not None
    assert "at-alice" == again.record.tokens.access_token


async def test_reload_reads_the_store_past_the_cache(
    cached: SessionManager, store: SessionStore
) -> None:
    """After a refresh lock, ``reload`` and ``load(cached=False)`` see what the store holds
    now, not the cached copy."""
    ticket = await cached.create(record())
    loaded = await cached.load(ticket)
    assert loaded is not None
    again = await cached.reload(loaded)
    assert again is not None
    assert loaded.record == again.record
    await store.delete(sess_key(loaded.handle))
    assert await cached.load(ticket) is not None  # still cached
    assert None is await cached.reload(loaded)
    assert None is await cached.load(ticket, cached=False)


async def test_an_expired_session_is_not_revived_by_the_cache(
    cached: SessionManager, clock: FakeClock
) -> None:
    """A cached session past its expiry or idle limit is gone, though the entry is fresh."""
    short = dataclasses.replace(record(), expires_at=clock.now + 100)
    ticket = await cached.create(short)
    assert await cached.load(ticket) is not None
    clock.advance(100)
    assert None is await cached.load(ticket)
    idle = await cached.create(record())
    assert await cached.load(idle) is not None
    clock.advance(IDLE)
    assert None is await cached.load(idle)


async def test_uses_served_from_the_cache_keep_the_session_alive(
    cached: SessionManager, make_manager: ManagerFactory, clock: FakeClock
) -> None:
    """Cache hits still move last_seen in the store: a user active only through hits is
    not logged out at the idle limit, on this instance or another."""
    ticket = await cached.create(record())
    assert await cached.load(ticket) is not None
    for _ in range(3):
        clock.advance(IDLE * 0.9)
        assert await cached.load(ticket) is not None
    elsewhere = await make_manager(idle_timeout=IDLE).load(ticket, cached=False)
    assert elsewhere is not None
    assert clock.now == elsewhere.record.last_seen


async def test_a_lost_touch_race_drops_the_cached_copy(
    cached: SessionManager, clock: FakeClock
) -> None:
    """A stale copy's touch loses to a newer save, and the cache then serves the saved
    tokens, not the stale ones."""
    ticket = await cached.create(record())
    stale = await cached.load(ticket, cached=False)
    fresh = await cached.load(ticket, cached=False)
    assert stale is not None
    assert fresh is not None
    fresh.record.tokens = TokenSet(access_token="at-new")
    assert await cached.save(fresh)
    assert await cached.load(ticket) is not None  # cached again, with the new tokens
    clock.advance(IDLE * TOUCH_FRACTION * 2)
    await cached._touch(stale, clock.now)
    loaded = await cached.load(ticket)
    assert loaded is not None
    assert "at-new" == loaded.record.tokens.access_token


async def test_a_cache_of_any_positive_lifetime_is_used(make_manager: ManagerFactory) -> None:
    """cache_ttl 1 caches (a hit survives the stored value's deletion); 0 never does."""
    for ttl, served in ((1, True), (0, False)):
        manager = make_manager(cache_ttl=ttl)
        await manager.start()
        ticket = await manager.create(record())
        assert await manager.load(ticket) is not None
        await manager.store.delete(sess_key(handle_of(ticket)))
        assert served is (await manager.load(ticket) is not None), ttl


async def test_cache_hits_and_misses_are_counted(cached: SessionManager) -> None:
    """gateway_cache_lookups_total{cache="session"} counts each cached load as hit or miss;
    a load past the cache is not a lookup."""

    def counts() -> tuple[float, float]:
        text = metrics.exposition()[0].decode()
        found = {"hit": 0.0, "miss": 0.0}
        for line in text.splitlines():
            for result in found:
                if line.startswith(
                    f'gateway_cache_lookups_total{{cache="session",result="{result}"}}'
                ):
                    found[result] = float(line.split()[-1])
        return found["hit"], found["miss"]

    ticket = await cached.create(record())
    hits, misses = counts()
    assert await cached.load(ticket) is not None
    assert (hits, misses + 1) == counts()
    assert await cached.load(ticket) is not None
    assert (hits + 1, misses + 1) == counts()
    assert await cached.load(ticket, cached=False) is not None
    assert (hits + 1, misses + 1) == counts()


async def test_logout_and_refresh_reach_the_cache_of_every_instance(
    make_manager: ManagerFactory,
) -> None:
    """B ends one session and refreshes another: A, which cached both, sees it."""
    a = make_manager(cache_ttl=600)
    b = make_manager(cache_ttl=600)
    await a.start()
    await b.start()
    ended = await a.create(record("alice", "sid-1"))
    refreshed = await a.create(record("bob", "sid-2"))
    assert await a.load(ended) is not None
    assert await a.load(refreshed) is not None
    assert await b.destroy_by_sub(ISSUER, "alice") == 1

    async def ended_on_a() -> bool:
        return await a.load(ended) is None

    await settle(ended_on_a)
    on_b = await b.load(refreshed)
    assert on_b is not None
    on_b.record.tokens = TokenSet(access_token="fresh")
    assert await b.save(on_b)

    async def refreshed_on_a() -> bool:
        seen = await a.load(refreshed)
        return seen is not None and seen.record.tokens.access_token == "fresh"

    await settle(refreshed_on_a)


async def test_change_listeners_hear_each_ended_session_once(
    make_manager: ManagerFactory,
) -> None:
    """A listener (the WebSocket watch) hears the handles of sessions ended or saved on
    any instance, each once, whether or not the cache is on."""
    for cache_ttl in (0, 600):
        heard: list[list[str]] = []
        watcher = make_manager(cache_ttl=cache_ttl)
        await watcher.start()
        await watcher.on_change(heard.append)
        other = make_manager()
        first = await other.create(record("alice", "sid-1"))
        second = await other.create(record("alice", "sid-2"))
        assert await other.destroy_by_sub(ISSUER, "alice") == 2

        async def heard_it(heard: list[list[str]] = heard) -> bool:
            return bool(heard)

        await settle(heard_it)
        await asyncio.sleep(0.05)  # a second delivery of the same message would be here
        assert [sorted([handle_of(first), handle_of(second)])] == [sorted(h) for h in heard]


# -- deadlines: the WebSocket watch ------------------------------------------------------


async def test_deadlines_give_each_live_sessions_end_and_leave_out_the_rest(
    manager: SessionManager, store: SessionStore, clock: FakeClock
) -> None:
    """Each live session's end is the earlier of its expiry and its idle limit; sessions
    gone, tampered, expired, idle or not tickets at all are left out, wherever they are in
    the list; the check does not count as use (nothing is written)."""
    gone = await manager.create(record("gone"))
    await manager.destroy(gone.split(".")[0])
    tampered = await manager.create(record("tampered"))
    key = sess_key(handle_of(tampered))
    raw = await store.get(key)
    assert raw is not None
    await store.set(key, raw[:-1] + bytes([raw[-1] ^ 1]), 600)
    short = await manager.create(dataclasses.replace(record("short"), expires_at=clock.now + 100))
    idle_bound = await manager.create(record("idle"))
    started = clock.now
    clock.advance(50)
    expiring = await manager.create(dataclasses.replace(record("exp"), expires_at=clock.now + 50))
    stored = await store.get(sess_key(handle_of(idle_bound)))
    tickets = [gone, tampered, "not-a-ticket", short, idle_bound, expiring]
    assert {
        short: started + 100,
        idle_bound: started + IDLE,
        expiring: started + 100,
    } == await manager.deadlines(tickets)
    assert stored == await store.get(sess_key(handle_of(idle_bound)))
    clock.advance(50)
    assert {idle_bound: started + IDLE} == await manager.deadlines(tickets)
    clock.advance(IDLE - 100)
    assert {} == await manager.deadlines(tickets)
    assert {} == await manager.deadlines([])


async def test_deadlines_leave_out_a_session_missing_from_its_index(
    manager: SessionManager, store: SessionStore
) -> None:
    """A session whose index entry was deleted counts as ended for the WebSocket watch
    too: its sockets are closed, as its requests are refused (it used to be reported live,
    so a socket outlived a logout that the deleted index made miss it)."""
    ticket = await manager.create(record("alice", "sid-1"))
    kept = await manager.create(record("bob", None))
    await store.remove_from_index(
        SID_INDEX_OF_SID_1, *await store.index_members(SID_INDEX_OF_SID_1)
    )
    assert [kept] == list(await manager.deadlines([ticket, kept]))
    assert None is await manager.load(ticket)


# -- admin listing -------------------------------------------------------------------------


async def test_listing_leaves_out_ended_sessions_and_shows_tokens_only_when_asked(
    make_manager: ManagerFactory,
    store: SessionStore,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Expired (at their expiry exactly) and unreadable sessions are not listed; the
    tokens are in a summary only with revoke_tokens_on_admin_end, and follow a refresh."""
    manager = make_manager(idle_timeout=IDLE, absolute_timeout=ABSOLUTE)
    short = await manager.create(dataclasses.replace(record(), expires_at=clock.now + 100))
    broken = await manager.create(record())
    key = sess_key(handle_of(broken))
    raw = await store.get(key)
    assert raw is not None
    await store.set(key, raw[:3] + bytes([raw[3] ^ 1]) + raw[4:], 600)
    kept = await manager.create(record())
    with caplog.at_level(logging.WARNING, logger="gateway.sessions.manager"):
        listed = await manager.list_by_sub(ISSUER, "alice")
    assert [f"session meta unreadable ({handle_of(broken)[:12]})"] == [
        r.getMessage() for r in caplog.records if r.name == "gateway.sessions.manager"
    ]
    assert sorted([handle_of(short), handle_of(kept)]) == sorted(s.handle for s in listed)
    assert [None, None] == [s.tokens for s in listed]
    clock.advance(100)
    assert [handle_of(kept)] == [s.handle for s in await manager.list_by_sub(ISSUER, "alice")]
    assert [handle_of(kept)] == [s.handle for s in await manager.list_by_sid(ISSUER, "sid-1")]
    revoking = make_manager(revoke_tokens_on_admin_end=True)
    ticket = await revoking.create(record("bob"))
    (summary,) = await revoking.list_by_sub(ISSUER, "bob")
    assert {"access_token": "at-alice", "refresh_token": "rt-at-alice"} == summary.tokens
    loaded = await revoking.load(ticket)
    assert loaded is not None
    loaded.record.tokens = TokenSet(access_token="at-2", refresh_token="rt-2")
    assert await revoking.save(loaded)
    (summary,) = await revoking.list_by_sub(ISSUER, "bob")
    assert {"access_token": "at-2", "refresh_token": "rt-2"} == summary.tokens


async def test_list_all_pages_through_every_live_session(
    manager: SessionManager, store: SessionStore, clock: FakeClock
) -> None:
    """Following the cursor lists each live session once; expired and unreadable ones
    never; a page ends early only once it holds ``limit`` sessions."""
    live = {handle_of(await manager.create(record(f"user-{i}"))) for i in range(5)}
    if isinstance(store, MemoryStore):  # exact pages: Redis' SCAN count is a hint
        sizes, cursor = [], ""
        while True:
            page, cursor = await manager.list_all(cursor, 2)
            sizes.append(len(page))
            if not cursor:
                break
        assert [2, 2, 1] == sizes
    expired = await manager.create(dataclasses.replace(record("x"), expires_at=clock.now + 10))
    broken = await manager.create(record("y"))
    await store.set(sess_key(handle_of(broken)), b"\x01garbage", 600)
    clock.advance(10)
    seen: list[str] = []
    cursor, pages = "", 0
    while True:
        page, cursor = await manager.list_all(cursor, 2)
        pages += 1
        if isinstance(store, MemoryStore):  # exact pages: Redis' SCAN count is a hint
            assert len(page) <= 3
        seen.extend(s.handle for s in page)
        if not cursor:
            break
        assert len(page) >= 2
    assert sorted(live) == sorted(seen)
    assert handle_of(expired) not in seen
    assert pages >= 2
    assert ([], "") == await make_empty(manager).list_all("", 2)


def make_empty(manager: SessionManager) -> SessionManager:
    return SessionManager(MemoryStore(), KeyRing([SECRET]), manager._settings, manager._clock)


# -- login state and locks -----------------------------------------------------------------


async def test_a_pending_login_opens_only_under_its_own_binding(
    manager: SessionManager, store: SessionStore, caplog: pytest.LogCaptureFixture
) -> None:
    """The sealed login copied under another browser's binding does not open there (and
    the log says so)."""
    await manager.put_login_state("binding-1", {"state": "s1", "verifier": "v"}, 60)
    sealed = await store.get(login_key("binding-1"))
    assert sealed is not None
    await store.set(login_key("binding-2"), sealed, 60)
    with caplog.at_level(logging.WARNING, logger="gateway.sessions.manager"):
        assert None is await manager.pending_login("binding-2")
    assert ["login state did not open"] == [
        r.getMessage() for r in caplog.records if r.name == "gateway.sessions.manager"
    ]
    assert None is await manager.take_login_state("binding-2", "s1")
    assert {"state": "s1", "verifier": "v"} == await manager.take_login_state("binding-1", "s1")


async def test_a_login_written_since_is_not_used_up_by_an_older_callback(
    manager: SessionManager,
) -> None:
    """Compare-and-delete: a callback holding the pending login read before a new login of
    the same browser started does not delete the new one."""
    await manager.put_login_state("binding-1", {"state": "s1"}, 60)
    found = await manager._login_state("binding-1")
    assert found is not None
    await manager.put_login_state("binding-1", {"state": "s1", "second": True}, 60)
    assert await manager.store.release_lock(login_key("binding-1"), found[0]) is False
    assert {"state": "s1", "second": True} == await manager.take_login_state("binding-1", "s1")


async def test_a_waiter_goes_on_as_soon_as_the_lock_is_released(
    manager: SessionManager,
) -> None:
    """A waiter willing to wait 60 s proceeds right after the holder releases (the bound
    is far above a slow machine's delay, far below the wait)."""
    async with manager.refresh_lock("session-z") as held:
        assert held
        waiter = asyncio.create_task(_hold(manager, "session-z", 60))
        await asyncio.sleep(0.1)
    async with asyncio.timeout(20):
        assert False is await waiter


async def _hold(manager: SessionManager, session_id: str, wait: float) -> bool:
    async with manager.refresh_lock(session_id, wait=wait) as held:
        return held


async def test_a_store_outage_at_lock_release_does_not_fail_the_refresh(
    manager: SessionManager, caplog: pytest.LogCaptureFixture
) -> None:
    """The work under the lock is done; a failing release is logged, not raised."""
    own = MemoryStore()
    manager = SessionManager(own, KeyRing([SECRET]), manager._settings, manager._clock)
    with caplog.at_level(logging.WARNING, logger="gateway.sessions.manager"):
        async with manager.refresh_lock("session-q") as held:
            assert held
            await own.close()
    assert ["could not release refresh lock: memory store is closed"] == [
        r.getMessage() for r in caplog.records if r.name == "gateway.sessions.manager"
    ]


async def test_create_and_load_name_the_user_in_the_log_context(manager: SessionManager) -> None:
    """After a login or a session load, the request's log lines carry its subject."""
    subject_var.set(None)
    ticket = await manager.create(record("alice"))
    assert "alice" == subject_var.get()
    subject_var.set(None)
    assert await manager.load(ticket) is not None
    assert "alice" == subject_var.get()


# -- what a real Redis holds -----------------------------------------------------------


def redis_manager(
    server: RedisServer, prefix: str, clock: FakeClock, **settings: object
) -> SessionManager:
    """A manager on the real Redis alone (the ``store`` fixture runs every store in turn)."""
    values: dict[str, object] = {"cache_ttl": 0, **settings}
    return SessionManager(
        redis_store(server, prefix), KeyRing([SECRET]), Sessions.model_validate(values), clock
    )


async def test_redis_expires_each_key_with_its_session(
    redis_server: RedisServer, prefix: str, clock: FakeClock
) -> None:
    """Redis drops a session at its idle limit or expiry, whichever comes first, and its
    index keys at its absolute expiry; a refresh lock lives max(30 s, twice the wait)."""
    settings = {"idle_timeout": IDLE, "absolute_timeout": ABSOLUTE}
    manager = redis_manager(redis_server, prefix, clock, **settings, refresh_lock_wait=20)
    try:
        ticket = await manager.create(record("alice", "sid-1"))
        short = await manager.create(
            dataclasses.replace(record("bob", None), expires_at=clock.now + 100)
        )
        with redis_server.client() as raw:
            assert 599_000 < raw.pttl(prefix + sess_key(handle_of(ticket))) <= 600_000
            assert 99_000 < raw.pttl(prefix + sess_key(handle_of(short))) <= 100_000
            for index in (SUB_INDEX_OF_ALICE, SID_INDEX_OF_SID_1):
                assert 3_599_000 < raw.pttl(prefix + index) <= 3_600_000, index
            bob = manager.sub_index(ISSUER, "bob")
            assert 99_000 < raw.pttl(prefix + bob) <= 100_000
        clock.advance(IDLE / 2)
        loaded = await manager.load(ticket)  # a touch: the idle limit starts again
        assert loaded is not None
        with redis_server.client() as raw:
            assert 599_000 < raw.pttl(prefix + sess_key(handle_of(ticket))) <= 600_000
        async with manager.refresh_lock("session-r") as held:
            assert held
            with redis_server.client() as raw:
                lock = prefix + lock_key(hashlib.sha256(b"session-r").hexdigest())
                assert 39_000 < raw.pttl(lock) <= 40_000
        with redis_server.client() as raw:
            assert raw.exists(lock) == 0
    finally:
        await manager.close()
    brief = redis_manager(redis_server, prefix, clock, **settings, refresh_lock_wait=5)
    try:
        async with brief.refresh_lock("session-s") as held:
            assert held
            with redis_server.client() as raw:
                lock = prefix + lock_key(hashlib.sha256(b"session-s").hexdigest())
                assert 29_000 < raw.pttl(lock) <= 30_000
    finally:
        await brief.close()


async def test_a_session_whose_index_redis_lost_is_refused(
    redis_server: RedisServer, prefix: str, clock: FakeClock
) -> None:
    """A neighbour DELs every index key under the prefix: every session is refused on its
    next read (here as in test_a_session_missing_from_its_user_index_is_refused)."""
    manager = redis_manager(redis_server, prefix, clock)
    try:
        tickets = [await manager.create(record(f"user-{i}", f"sid-{i}")) for i in range(3)]
        assert [await manager.load(t) is not None for t in tickets] == [True] * 3
        with redis_server.client() as raw:
            raw.delete(*raw.scan_iter(prefix + "idx:*"))
        assert [await manager.load(t) for t in tickets] == [None] * 3
        assert {} == await manager.deadlines(tickets)
    finally:
        await manager.close()


async def test_an_unreadable_session_is_refused_saying_so(
    manager: SessionManager, store: SessionStore, caplog: pytest.LogCaptureFixture
) -> None:
    """A stored value that does not open is no session, and the log names the session
    (its handle's first 12 characters) and why."""
    ticket = await manager.create(record())
    key = sess_key(handle_of(ticket))
    raw = await store.get(key)
    assert raw is not None
    await store.set(key, raw[:-1] + bytes([raw[-1] ^ 1]), 600)
    with caplog.at_level(logging.INFO, logger="gateway.sessions.manager"):
        assert None is await manager.load(ticket)
    assert [f"session did not open ({handle_of(ticket)[:12]}): SealError"] == [
        r.getMessage() for r in caplog.records if r.name == "gateway.sessions.manager"
    ]


async def test_a_touch_that_finds_the_session_rewritten_drops_the_cached_copy(
    cached: SessionManager, make_manager: ManagerFactory, clock: FakeClock
) -> None:
    """Another instance saved new tokens and its invalidation has not arrived yet: the
    touch of the cached copy fails, and the next load reads the new tokens at once."""
    ticket = await cached.create(record())
    assert await cached.load(ticket) is not None  # cached, old tokens
    other = make_manager(idle_timeout=IDLE, absolute_timeout=ABSOLUTE)
    fresh = await other.load(ticket, cached=False)
    assert fresh is not None
    clock.advance(IDLE * TOUCH_FRACTION * 2)
    fresh.record.tokens = TokenSet(access_token="at-new")
    assert await other.save(fresh)
    # No await that yields before these loads: the memory store's invalidation is still
    # queued (on Redis it may have arrived, which only makes the point moot).
    assert await cached.load(ticket) is not None  # the stale hit, whose touch fails
    loaded = await cached.load(ticket)
    assert loaded is not None
    assert "at-new" == loaded.record.tokens.access_token


async def test_with_the_cache_off_no_cache_lookups_are_counted(
    make_manager: ManagerFactory,
) -> None:
    """cache_ttl 0: start subscribes to nothing, and loads count neither hits nor misses
    on gateway_cache_lookups_total{cache="session"}."""
    manager = make_manager(cache_ttl=0)
    await manager.start()
    ticket = await manager.create(record())
    before = metrics.exposition()[0].decode()
    for _ in range(3):
        assert await manager.load(ticket) is not None
    after = metrics.exposition()[0].decode()
    lookups = [
        line for line in after.splitlines() if line.startswith("gateway_cache_lookups_total")
    ]
    assert lookups == [
        line for line in before.splitlines() if line.startswith("gateway_cache_lookups_total")
    ]
