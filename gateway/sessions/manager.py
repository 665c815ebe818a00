"""Sessions on top of a store: tickets, sealing, expiry, indexes, cache, locks, login state.

The stored form is described in ``codec``, the key layout in ``layout``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import json
import logging
import struct
from collections.abc import AsyncIterator, Callable, Collection, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from gateway import metrics
from gateway.config.model import Sessions
from gateway.crypto import KeyRing, SealError, digest, random_token
from gateway.errors import StoreUnavailable
from gateway.log import subject_var
from gateway.sessions.cache import CachedSession, SessionCache
from gateway.sessions.codec import (
    SessionMeta,
    Ticket,
    open_meta,
    open_record,
    record_from_json,
    record_to_json,
    seal_session,
)
from gateway.sessions.layout import (
    INVALIDATE_CHANNEL,
    index_input,
    index_member,
    index_names,
    lock_key,
    login_key,
    member_expired,
    member_handle,
    sess_key,
    valid_state_id,
)
from gateway.sessions.store import SessionStore
from gateway.types import SessionRecord

__all__ = ["LoadedSession", "SessionManager", "SessionSummary"]

TOUCH_FRACTION = 0.05  # rewrite last_seen once it is this share of idle_timeout old
LOCK_TTL = 30.0  # a refresh lock outlives a crashed holder by at most this, seconds
LOCK_POLL = 0.05  # seconds between looks at a lock held by someone else
_UNREADABLE = (SealError, ValueError, TypeError, KeyError, struct.error)

log = logging.getLogger(__name__)


@dataclass(slots=True)
class LoadedSession:
    """An opened session; change ``record`` (e.g. new tokens) and hand it to ``save``."""

    ticket: Ticket
    record: SessionRecord
    meta: SessionMeta
    raw: bytes  # the stored value as read: a touch only replaces exactly this

    @property
    def session_id(self) -> str:
        return self.ticket.session_id

    @property
    def handle(self) -> str:
        """SHA-256 of the session id: safe to log and show to admins."""
        return self.ticket.handle


@dataclass(frozen=True, slots=True)
class SessionSummary:
    """What admin tools see of a session without its ticket."""

    handle: str
    provider: str
    issuer: str
    subject: str
    sid: str | None
    created_at: float
    expires_at: float
    # the tokens, only with sessions.revoke_tokens_on_admin_end; never shown to admins
    tokens: dict[str, str] | None = field(default=None, repr=False)

    @property
    def short_id(self) -> str:
        return self.handle[:12]


class SessionManager:
    """Creates, opens, saves and ends sessions; the clock gives epoch seconds."""

    def __init__(
        self,
        store: SessionStore,
        keyring: KeyRing,
        settings: Sessions,
        clock: Callable[[], float],
    ) -> None:
        self.store = store
        self._keyring = keyring
        self._index_ring = keyring.derive("session-index")
        self._settings = settings
        self._clock = clock
        self._cache = SessionCache(settings.cache_ttl)
        self._change_listeners: list[Callable[[list[str]], None]] = []
        self._subscribed = False

    async def start(self) -> None:
        """Subscribe to invalidations; until this succeeds, the cache stays off."""
        if self._settings.cache_ttl > 0:
            await self._subscribe()

    async def _subscribe(self) -> None:
        self._subscribed = True
        await self.store.subscribe(
            INVALIDATE_CHANNEL, self._on_invalidate, on_connection=self._cache.set_live
        )

    async def on_change(self, listener: Callable[[list[str]], None]) -> None:
        """Call ``listener`` with the handles of sessions saved or ended, on any instance."""
        self._change_listeners.append(listener)
        if not self._subscribed:
            await self._subscribe()

    async def ping(self) -> None:
        """Raise StoreUnavailable unless the store answers (readiness)."""
        await self.store.ping()

    async def close(self) -> None:
        """Close the store (and with it the invalidation listener)."""
        await self.store.close()

    # -- create / load / save -------------------------------------------------------------

    async def create(self, record: SessionRecord) -> str:
        """Store a new session (new id every login) and return its ticket for the cookie.

        ``created_at`` and ``last_seen`` become now; ``expires_at`` is kept only if it is
        earlier than now + absolute_timeout.
        """
        now = self._clock()
        limit = now + self._settings.absolute_timeout
        expires = record.expires_at if now < record.expires_at < limit else limit
        record = replace(record, created_at=now, last_seen=now, expires_at=expires)
        ticket, meta = Ticket.new(), self._meta_of(record)
        member, ttl = index_member(ticket.handle, expires), expires - now
        # Indexes first: a crash in between leaves a stale member, never an unindexed session
        # that a back-channel logout could not find.
        await self.store.add_to_index(self.sub_index(meta.issuer, meta.subject), member, ttl)
        if meta.sid is not None:
            await self.store.add_to_index(self.sid_index(meta.issuer, meta.sid), member, ttl)
        value = seal_session(self._keyring, ticket, record_to_json(record), meta)
        await self.store.set(sess_key(ticket.handle), value, self._ttl(record, meta, now))
        await self._prune_index(self.sub_index(meta.issuer, meta.subject), now)
        subject_var.set(meta.subject)
        return str(ticket)

    async def load(self, ticket: str, *, cached: bool = True) -> LoadedSession | None:
        """The session of a cookie's ticket, or None if unknown, expired, malformed or forged."""
        now = self._clock()
        entry = self._cache.find(ticket, now) if cached else None
        if cached and self._cache.live:
            metrics.cache_lookup("session", hit=entry is not None)
        loaded: LoadedSession | None
        if entry is not None:
            # A hit needs no parsing or decryption; the copy is the caller's to change.
            loaded = LoadedSession(entry.ticket, _copy(entry.record), entry.meta, entry.raw)
        else:
            parsed = Ticket.parse(ticket)
            if parsed is None:
                return None
            loaded = await self._read(parsed, now)
        if loaded is None or not self._alive(loaded, now):
            return None
        if now - loaded.record.last_seen >= self._settings.idle_timeout * TOUCH_FRACTION:
            await self._touch(loaded, now)
        subject_var.set(loaded.record.subject)  # the request's log lines name who it is
        return loaded

    async def deadlines(self, tickets: Collection[str]) -> dict[str, float]:
        """When each live session among ``tickets`` ends if unused: no touch.

        Past the cache, and without moving ``last_seen``: a check is not a use. Sessions
        unknown, ended, expired, unreadable or missing from their indexes are left out
        (one read for all sessions, then each live one's index entries, as ``load`` does).
        """
        parsed = [t for t in map(Ticket.parse, tickets) if t is not None]
        values = await self._get_many([sess_key(t.handle) for t in parsed])
        now, found = self._clock(), {}
        for ticket, raw in zip(parsed, values, strict=True):
            if raw is None:
                continue
            try:
                meta = open_meta(self._keyring, ticket.handle, raw)
                record = record_from_json(open_record(self._keyring, ticket, raw))
            except _UNREADABLE:
                continue
            loaded = LoadedSession(ticket, record, meta, raw)
            if self._alive(loaded, now) and await self._still_indexed(ticket.handle, meta):
                idle_end = record.last_seen + self._settings.idle_timeout
                found[str(ticket)] = min(meta.expires_at, idle_end)
        return found

    async def reload(self, loaded: LoadedSession) -> LoadedSession | None:
        """Read ``loaded`` again from the store, past the cache (e.g. after a refresh lock)."""
        return await self.load(str(loaded.ticket), cached=False)

    async def save(self, loaded: LoadedSession) -> bool:
        """Write back a changed record (after a refresh); False if it ended meanwhile."""
        now = self._clock()
        if not self._alive(loaded, now):
            return False
        loaded.record.last_seen = now
        loaded.meta = self._meta_of(loaded.record)  # new tokens after a refresh
        value = seal_session(
            self._keyring, loaded.ticket, record_to_json(loaded.record), loaded.meta
        )
        ttl = self._ttl(loaded.record, loaded.meta, now)
        # Only if it exists: a session destroyed during the refresh must stay destroyed.
        written = await self.store.set_if_exists(sess_key(loaded.handle), value, ttl)
        if written:
            loaded.raw = value
        await self._invalidate([loaded.handle])
        return written

    # -- ending sessions ------------------------------------------------------------------

    async def destroy(self, session_id: str) -> bool:
        """End one session (logout); False if it did not exist."""
        return await self.destroy_by_handle(digest(session_id)) > 0

    async def destroy_by_handle(self, handle: str) -> int:
        """End the session with this handle (admin tools); return 1 if it existed, else 0."""
        return await self._destroy_members(None, [index_member(handle, 0)])

    async def destroy_by_sid(self, issuer: str, sid: str) -> int:
        """End every session of a provider session (back-channel logout); return how many."""
        return await self._destroy_indexed(self._indexes("sid", issuer, sid))

    async def destroy_by_sub(self, issuer: str, sub: str) -> int:
        """End every session of a user; return how many."""
        return await self._destroy_indexed(self._indexes("sub", issuer, sub))

    async def _destroy_indexed(self, indexes: list[str]) -> int:
        count = 0
        for index in indexes:
            count += await self._destroy_members(index, await self.store.index_members(index))
        return count

    # -- index names ---------------------------------------------------------------------

    def _indexes(self, kind: str, issuer: str, value: str) -> list[str]:
        return index_names(self._index_ring.macs(index_input(issuer, value)), kind)

    def sub_index(self, issuer: str, sub: str) -> str:
        """The key of a user's index under the current secret."""
        return self._indexes("sub", issuer, sub)[0]

    def sid_index(self, issuer: str, sid: str) -> str:
        """The key of a provider session's index under the current secret."""
        return self._indexes("sid", issuer, sid)[0]

    async def _still_indexed(self, handle: str, meta: SessionMeta) -> bool:
        """Whether the session is still in its indexes, which logout finds it by: a session
        missing from one (deleted by someone else than the gateway) counts as ended, so an
        emptied index can never keep a session alive through a back-channel logout."""
        member = index_member(handle, meta.expires_at)
        wanted = [self._indexes("sub", meta.issuer, meta.subject)]
        if meta.sid is not None:
            wanted.append(self._indexes("sid", meta.issuer, meta.sid))
        for names in wanted:
            found = False
            for name in names:
                if member in await self.store.index_members(name):
                    found = True
                    break
            if not found:
                return False
        return True

    # -- admin listing --------------------------------------------------------------------

    async def list_by_sub(self, issuer: str, sub: str) -> list[SessionSummary]:
        """The live sessions of a user, oldest first."""
        return await self._list(self._indexes("sub", issuer, sub))

    async def list_all(self, cursor: str, limit: int) -> tuple[list[SessionSummary], str]:
        """A page of every live session (about ``limit``), and the cursor of the next page."""
        found: list[SessionSummary] = []
        now = self._clock()
        while True:
            keys, cursor = await self.store.scan(sess_key(""), cursor, limit)
            handles = [key.removeprefix(sess_key("")) for key in keys]
            for handle, value in zip(handles, await self._get_many(keys), strict=True):
                meta = self._meta_or_none(handle, value)
                if meta is not None and meta.expires_at > now:
                    found.append(SessionSummary(handle=handle, **dataclasses.asdict(meta)))
            if not cursor or len(found) >= limit:
                return found, cursor

    async def list_by_sid(self, issuer: str, sid: str) -> list[SessionSummary]:
        """The live sessions of a provider session, oldest first."""
        return await self._list(self._indexes("sid", issuer, sid))

    # -- login state ---------------------------------------------------------------------

    # A pending login lives under its browser's binding (the login cookie), one per browser,
    # and is sealed with the binding: without the cookie it can be neither found nor read.

    async def put_login_state(self, binding: str, data: dict[str, Any], ttl: float) -> None:
        """Keep the pending login of ``binding`` (``data["state"]`` is its state id)."""
        if not valid_state_id(binding) or not valid_state_id(str(data.get("state", ""))):
            raise ValueError("a binding or state id is 1-512 visible ASCII characters")
        plain = json.dumps(data, separators=(",", ":")).encode("utf-8")
        sealed = self._keyring.seal(plain, key_material=binding.encode(), context=b"login-state")
        await self.store.set(login_key(binding), sealed, ttl)

    async def pending_login(self, binding: str) -> dict[str, Any] | None:
        """The pending login of ``binding`` without using it up; None if none."""
        found = await self._login_state(binding)
        return found[1] if found else None

    async def take_login_state(self, binding: str, state_id: str) -> dict[str, Any] | None:
        """The pending login of ``binding`` if its state is ``state_id``, once; else None.

        A wrong state leaves the pending login in place: only its own callback uses it up.
        """
        found = await self._login_state(binding)
        if found is None:
            return None
        raw, data = found
        if not hmac.compare_digest(str(data.get("state", "")).encode(), state_id.encode()):
            return None
        # Compare-and-delete: exactly one callback wins, and never a login written since.
        if not await self.store.release_lock(login_key(binding), raw):
            return None
        return data

    async def _login_state(self, binding: str) -> tuple[bytes, dict[str, Any]] | None:
        if not valid_state_id(binding):
            return None
        sealed = await self.store.get(login_key(binding))
        if sealed is None:
            return None
        try:
            plain = self._keyring.open_(
                sealed, key_material=binding.encode(), context=b"login-state"
            )
            data = json.loads(plain)
        except (SealError, ValueError):
            log.warning("login state did not open")
            return None
        return (sealed, data) if isinstance(data, dict) else None

    # -- refresh lock ---------------------------------------------------------------------

    @asynccontextmanager
    async def refresh_lock(
        self, session_id: str, *, wait: float | None = None
    ) -> AsyncIterator[bool]:
        """Yield True if this caller holds the session's refresh lock.

        Otherwise wait until the holder releases it (at most ``wait`` seconds, default
        ``refresh_lock_wait``) and yield False: re-load the session and use its tokens.
        """
        key = lock_key(digest(session_id))
        token = random_token(16).encode("ascii")
        lock_ttl = max(LOCK_TTL, 2 * self._settings.refresh_lock_wait)
        held = await self.store.set_if_absent(key, token, lock_ttl)
        if not held:
            await self._await_release(
                key, self._settings.refresh_lock_wait if wait is None else wait
            )
        try:
            yield held
        finally:
            if held:
                await self._release(key, token)

    # -- internals ------------------------------------------------------------------------

    def _meta_of(self, record: SessionRecord) -> SessionMeta:
        return SessionMeta.of(record, with_tokens=self._settings.revoke_tokens_on_admin_end)

    def _ttl(self, record: SessionRecord, meta: SessionMeta, now: float) -> float:
        remaining = meta.expires_at - now
        idle = self._settings.idle_timeout - max(0.0, now - record.last_seen)
        return max(min(remaining, idle), 0.001)

    def _alive(self, loaded: LoadedSession, now: float) -> bool:
        idle_for = now - loaded.record.last_seen
        return now < loaded.meta.expires_at and idle_for < self._settings.idle_timeout

    async def _read(self, ticket: Ticket, now: float) -> LoadedSession | None:
        generation = self._cache.generation
        raw = await self.store.get(sess_key(ticket.handle))
        if raw is None:
            return None
        try:
            meta = open_meta(self._keyring, ticket.handle, raw)
            record = record_from_json(open_record(self._keyring, ticket, raw))
        except _UNREADABLE as exc:
            log.info("session did not open (%s): %s", ticket.handle[:12], type(exc).__name__)
            return None
        if not await self._still_indexed(ticket.handle, meta):
            log.warning(
                "session %s is missing from its index: treated as ended", ticket.handle[:12]
            )
            return None
        self._cache.put(CachedSession(ticket, _copy(record), meta, raw, now), generation)
        return LoadedSession(ticket, record, meta, raw)

    async def _touch(self, loaded: LoadedSession, now: float) -> None:
        """Move last_seen (and the TTL) forward, unless someone wrote the session meanwhile."""
        stale_raw, generation = loaded.raw, self._cache.generation
        loaded.record.last_seen = now
        snapshot = _copy(loaded.record)  # taken now: the caller may change its record later
        plaintext = record_to_json(loaded.record)
        value = seal_session(self._keyring, loaded.ticket, plaintext, loaded.meta)
        ttl = self._ttl(loaded.record, loaded.meta, now)
        key = sess_key(loaded.handle)
        # Compare-and-set: a concurrent save holds newer tokens and must not be overwritten.
        if await self.store.replace(key, stale_raw, value, ttl):
            loaded.raw = value
            entry = CachedSession(loaded.ticket, snapshot, loaded.meta, value, now)
            self._cache.put(entry, generation)
        else:
            self._cache.invalidate(loaded.handle)

    async def _destroy_members(self, index: str | None, members: Iterable[str]) -> int:
        members = list(members)
        handles = [member_handle(m) for m in members]
        values = await self._get_many([sess_key(h) for h in handles])
        others: dict[str, list[str]] = {}
        for handle, value in zip(handles, values, strict=True):
            meta = self._meta_or_none(handle, value)
            if meta is None:
                continue
            entry = index_member(handle, meta.expires_at)
            for name in self._indexes("sub", meta.issuer, meta.subject):
                others.setdefault(name, []).append(entry)
            if meta.sid is not None:
                for name in self._indexes("sid", meta.issuer, meta.sid):
                    others.setdefault(name, []).append(entry)
        count = await self.store.delete(*(sess_key(h) for h in handles)) if handles else 0
        if index is not None:
            others.setdefault(index, []).extend(members)
        await self.store.remove_from_indexes(others)
        if handles:
            await self._invalidate(handles)
        return count

    async def _list(self, indexes: list[str]) -> list[SessionSummary]:
        now = self._clock()
        members: set[str] = set()
        for index in indexes:
            members |= await self.store.index_members(index)
        handles = sorted({member_handle(m) for m in members})
        values = await self._get_many([sess_key(h) for h in handles])
        summaries = []
        for handle, value in zip(handles, values, strict=True):
            meta = self._meta_or_none(handle, value)
            if meta is not None and meta.expires_at > now:
                summaries.append(SessionSummary(handle=handle, **dataclasses.asdict(meta)))
        return sorted(summaries, key=lambda s: s.created_at)

    def _meta_or_none(self, handle: str, value: bytes | None) -> SessionMeta | None:
        if value is None:
            return None
        try:
            return open_meta(self._keyring, handle, value)
        except _UNREADABLE:
            log.warning("session meta unreadable (%s)", handle[:12])
            return None

    async def _get_many(self, keys: list[str]) -> list[bytes | None]:
        return await self.store.get_many(keys) if keys else []

    async def _prune_index(self, index: str, now: float) -> None:
        """Drop members past their absolute expiry, so a daily user's index stays small."""
        stale = [m for m in await self.store.index_members(index) if member_expired(m, now)]
        if stale:
            await self.store.remove_from_index(index, *stale)

    async def _invalidate(self, handles: list[str]) -> None:
        self._cache.invalidate(*handles)
        await self.store.publish(INVALIDATE_CHANNEL, " ".join(handles))

    def _on_invalidate(self, message: str) -> None:
        handles = message.split()
        self._cache.invalidate(*handles)
        for listener in self._change_listeners:
            listener(handles)

    async def _await_release(self, key: str, wait: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while loop.time() < deadline:
            await asyncio.sleep(LOCK_POLL)
            if await self.store.get(key) is None:
                return

    async def _release(self, key: str, token: bytes) -> None:
        try:
            await self.store.release_lock(key, token)
        except StoreUnavailable as exc:
            # The work under the lock is done; the lock's TTL frees it in the worst case.
            log.warning("could not release refresh lock: %s", exc)


def _copy(record: SessionRecord) -> SessionRecord:
    """A shallow copy, so the cached snapshot never sees a caller's change to a field.

    Callers replace fields (``tokens`` after a refresh, ``last_seen``) and never change the
    token set or the claims in place, so those can be shared.
    """
    return SessionRecord(
        record.provider,
        record.issuer,
        record.subject,
        record.sid,
        record.claims,
        record.tokens,
        record.created_at,
        record.last_seen,
        record.expires_at,
        record.client_id,
        record.claims_read_at,
    )
