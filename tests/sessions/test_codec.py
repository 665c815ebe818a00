"""Tickets and sealed session values: what a cookie thief or a store reader can do with them."""

from __future__ import annotations

import dataclasses
import struct

import pytest

from gateway.crypto import KeyRing, SealError, digest
from gateway.secret import Secret
from gateway.sessions.codec import (
    SessionMeta,
    Ticket,
    open_meta,
    open_record,
    record_from_json,
    record_to_json,
    seal_session,
)
from gateway.types import SessionRecord, TokenSet

KEYS = KeyRing([Secret("codec-test-secret-0123456789abcdef0123")])
RECORD = SessionRecord(
    provider="op",
    issuer="https://op.example",
    subject="alice",
    sid="sid-1",
    claims={"email": "alice@example.com"},
    tokens=TokenSet(access_token="at", refresh_token="rt", expires_at=5.0, extra={"x": 1}),
    created_at=1.0,
    last_seen=2.0,
    expires_at=3.0,
)


def test_a_new_ticket_round_trips_through_its_cookie_text() -> None:
    """A fresh ticket is two 43-character random parts; its text parses back to it, its
    handle is the SHA-256 of the id alone, and two tickets never share a part."""
    ticket = Ticket.new()
    text = str(ticket)
    assert 87 == len(text)
    assert ticket == Ticket.parse(text)
    assert digest(ticket.session_id) == ticket.handle
    other = Ticket.new()
    assert {ticket.session_id, ticket.session_key}.isdisjoint({other.session_id, other.session_key})
    assert ticket.session_id != ticket.session_key


@pytest.mark.parametrize(
    "text",
    [
        "",
        "a" * 87,
        "a" * 43 + "." + "a" * 42,
        "a" * 43 + "." + "a" * 44,
        "a" * 42 + ".." + "a" * 43,
        "a" * 43 + "." + "a" * 42 + "=",
        "a" * 43 + "." + "a" * 42 + "/",
        "a" * 43 + "." + "a" * 42 + "\n",
        "a" * 43 + "+" + "a" * 43,
    ],
)
def test_text_not_shaped_like_a_ticket_is_no_ticket(text: str) -> None:
    """A cookie value of the wrong length or alphabet is not a ticket (no store lookup)."""
    assert Ticket.parse(text) is None


def test_ticket_parts_may_use_the_whole_url_safe_alphabet() -> None:
    """Both parts may contain '-' and '_' (URL-safe base64)."""
    text = "-_" * 21 + "a" + "." + "Z9" * 21 + "_"
    ticket = Ticket.parse(text)
    assert ticket is not None
    assert ("-_" * 21 + "a", "Z9" * 21 + "_") == (ticket.session_id, ticket.session_key)


def test_the_record_json_round_trips() -> None:
    """A session record survives its JSON form unchanged, tokens included."""
    assert RECORD == record_from_json(record_to_json(RECORD))


def sealed(ticket: Ticket) -> bytes:
    return seal_session(KEYS, ticket, record_to_json(RECORD), SessionMeta.of(RECORD))


def test_meta_opens_with_the_server_key_and_the_record_needs_the_ticket() -> None:
    """An admin (server key, handle) reads the meta; the record opens only with the ticket."""
    ticket = Ticket.new()
    value = sealed(ticket)
    meta = open_meta(KEYS, ticket.handle, value)
    assert SessionMeta("op", "https://op.example", "alice", "sid-1", 1.0, 3.0) == meta
    assert RECORD == record_from_json(open_record(KEYS, ticket, value))
    assert b"alice" not in value
    assert b"refresh_token" not in value


def test_a_stolen_store_value_does_not_open_under_another_ticket() -> None:
    """A value copied to another session's handle opens neither its meta nor its record."""
    ticket, other = Ticket.new(), Ticket.new()
    value = sealed(ticket)
    with pytest.raises(SealError):
        open_meta(KEYS, other.handle, value)
    with pytest.raises(SealError):
        open_record(KEYS, other, value)
    # Same id, another key: the record still does not open.
    with pytest.raises(SealError):
        open_record(KEYS, Ticket(ticket.session_id, other.session_key), value)


def test_another_deployments_secret_opens_nothing() -> None:
    """A value sealed with another server secret does not open."""
    ticket = Ticket.new()
    foreign = KeyRing([Secret("another-deployment-secret-0123456789abc")])
    value = seal_session(foreign, ticket, b"{}", SessionMeta.of(RECORD))
    with pytest.raises(SealError):
        open_meta(KEYS, ticket.handle, value)
    with pytest.raises(SealError):
        open_record(KEYS, ticket, value)


def test_an_unknown_value_version_is_refused() -> None:
    """A stored value of another format version is refused, not misread."""
    ticket = Ticket.new()
    value = bytearray(sealed(ticket))
    value[0] = 2
    with pytest.raises(ValueError, match="unknown session value version 2"):
        open_meta(KEYS, ticket.handle, bytes(value))
    with pytest.raises(ValueError, match="unknown session value version 2"):
        open_record(KEYS, ticket, bytes(value))


def test_a_truncated_value_is_refused() -> None:
    """A value cut short anywhere is refused (struct or seal error), never half-read."""
    ticket = Ticket.new()
    value = sealed(ticket)
    with pytest.raises(struct.error):
        open_meta(KEYS, ticket.handle, value[:2])
    (meta_length,) = struct.unpack_from(">H", value, 1)
    with pytest.raises(SealError):
        open_record(KEYS, ticket, value[: 3 + meta_length + 10])
    with pytest.raises(SealError):
        open_meta(KEYS, ticket.handle, value[: 3 + meta_length - 1])


# A session stored by this version (ticket "A"*43 . "B"*43, KEYS): sealed with a random
# nonce, so written once; every later version must still open it.
STORED = bytes.fromhex(
    "010092011983fd9787bdb8ca237f20644e8625439a19774f3f59f3f5cee21d446939c4ee7fba4b3bb3b6441e"
    "eb019165df3b6cffc28ffacb61a6486fcaa6f7bd2a4d994efb49ffc48f50f7b697d2030e0ae63231055671a5"
    "a3560ebba6f889cc96e4eebca2a91050e9a191c2c57ca3838cb2b8d1c9601e762a77bd458b8dfe19b37e23b7"
    "4f236eaac9b7cfd5802c803d3c56c756da011983fd97657dd98f4168033955749d02f5ffb5f2e6b08070e638"
    "ebc4ca691b82e5d6314df60faac128cddba352febebdb39746eef4641c644a4854c32e557d4d3359506d68e3"
    "017c4128582f3e11cdbf66cd85b58a1cc9b4bede81d1e5b6c86316c527729b3526e403444a74d95f48a95511"
    "2fa4d9f32e622d579ada3f46b7c768c99aefc22cc7bdfde9ec8c79331eaacc0606796eaf3830e16544182b9c"
    "3c6920eefe5b48462eb81f8c06ce3580f83da46c6f1750d6ee201fba3383fb047a78bb6516be2a4b6dad079e"
    "d0ff89a2728fc6e36f632460947e467b246ab10f8261fd6c359f1ba1f788e5dea3308ed3c5271e9a189f0a3c"
    "d17b5dfac7006d5b1e3efe0453c8bffc8d1c8cef2dfa723627dc3a0050f2e1b78f48b4da61d41e0e066262c3"
    "91031bb7c1c0a7641478ac7521dc51dad20c35a2823221ec79180b8fea8bbc7913b25c23de42c5019ca71fbc"
    "65db"
)


def test_sessions_stored_earlier_still_open() -> None:
    """An upgrade must not log everyone out: a stored value of this format opens, meta
    with the server key, record with the ticket."""
    ticket = Ticket("A" * 43, "B" * 43)
    assert SessionMeta.of(RECORD) == open_meta(KEYS, ticket.handle, STORED)
    assert RECORD == record_from_json(open_record(KEYS, ticket, STORED))


def test_meta_carries_the_tokens_for_revocation_only_when_asked() -> None:
    """With sessions.revoke_tokens_on_admin_end the meta (readable with the server key
    alone) holds the access and refresh tokens, by name, so an admin end can revoke them
    at the provider; a token the session lacks is left out; without it, no token at all."""
    ticket = Ticket.new()
    meta = SessionMeta.of(RECORD, with_tokens=True)
    value = seal_session(KEYS, ticket, record_to_json(RECORD), meta)
    opened = open_meta(KEYS, ticket.handle, value)
    assert {"access_token": "at", "refresh_token": "rt"} == opened.tokens
    assert meta == opened
    without_refresh = dataclasses.replace(
        RECORD, tokens=dataclasses.replace(RECORD.tokens, refresh_token=None)
    )
    assert {"access_token": "at"} == SessionMeta.of(without_refresh, with_tokens=True).tokens
    assert SessionMeta.of(RECORD).tokens is None
