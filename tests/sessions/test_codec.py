"""Tickets and sealed session values: what a cookie thief or a store reader can do with them."""

from __future__ import annotations

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
