"""Tickets and the stored form of a session: what the cookie and the store each hold.

The cookie holds the ticket ``<session_id>.<session_key>``. The store holds, under a key
derived from the SHA-256 of the session id (the *handle*), two sealed parts:

- ``meta`` (issuer, subject, sid, times), sealed with the server key alone, so admin
  tools can list and revoke sessions without any user's ticket;
- the :class:`SessionRecord` (tokens, claims), sealed with the server key *and* the
  session key, so neither the store nor the cookie alone can read it.
"""

from __future__ import annotations

import dataclasses
import json
import re
import struct
from dataclasses import dataclass, field
from typing import Any

from gateway.crypto import KeyRing, digest, random_token
from gateway.types import SessionRecord, TokenSet

ID_BYTES = 32  # 256 bits each for the id and the key: well over the 128 required
KEY_BYTES = 32
VALUE_VERSION = 1
ID_LENGTH = 43  # 32 bytes in unpadded URL-safe base64
TICKET_LENGTH = ID_LENGTH * 2 + 1
_PART = re.compile(r"[A-Za-z0-9_-]{43}")
_FRAME = struct.Struct(">BH")  # version, length of the sealed meta


@dataclass(frozen=True, slots=True)
class Ticket:
    """What the session cookie carries."""

    session_id: str
    session_key: str
    handle: str = field(init=False, repr=False, compare=False)
    """SHA-256 of the session id, computed once: safe to log and show to admins."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "handle", digest(self.session_id))

    @classmethod
    def new(cls) -> Ticket:
        return cls(random_token(ID_BYTES), random_token(KEY_BYTES))

    @classmethod
    def parse(cls, text: str) -> Ticket | None:
        """The ticket in ``text``, or None if it is not shaped like one."""
        if len(text) != TICKET_LENGTH:
            return None
        session_id, _, session_key = text.partition(".")
        if not (_PART.fullmatch(session_id) and _PART.fullmatch(session_key)):
            return None
        return cls(session_id, session_key)

    def __str__(self) -> str:
        return f"{self.session_id}.{self.session_key}"


@dataclass(frozen=True, slots=True)
class SessionMeta:
    """The part of a session readable with the server key alone."""

    provider: str
    issuer: str
    subject: str
    sid: str | None
    created_at: float
    expires_at: float
    # Only with sessions.revoke_tokens_on_admin_end: the tokens, for revocation at the
    # provider when a session is ended without its ticket (admin, back-channel logout).
    tokens: dict[str, str] | None = None

    @classmethod
    def of(cls, record: SessionRecord, *, with_tokens: bool = False) -> SessionMeta:
        tokens = None
        if with_tokens:
            held = {"access_token": record.tokens.access_token,
                    "refresh_token": record.tokens.refresh_token}  # fmt: skip
            tokens = {name: value for name, value in held.items() if value}
        return cls(
            record.provider,
            record.issuer,
            record.subject,
            record.sid,
            record.created_at,
            record.expires_at,
            tokens,
        )


def record_to_json(record: SessionRecord) -> bytes:
    return json.dumps(dataclasses.asdict(record), separators=(",", ":")).encode("utf-8")


def record_from_json(data: bytes) -> SessionRecord:
    """Rebuild a record; raises ValueError, TypeError or KeyError if the shape is wrong."""
    fields: dict[str, Any] = json.loads(data)
    tokens = TokenSet(**fields.pop("tokens"))
    return SessionRecord(tokens=tokens, **fields)


def _meta_context(handle: str) -> bytes:
    return b"session-meta\x00" + handle.encode("ascii")


def _record_context(ticket: Ticket) -> bytes:
    return b"session\x00" + ticket.session_id.encode("ascii")


def seal_session(keyring: KeyRing, ticket: Ticket, plaintext: bytes, meta: SessionMeta) -> bytes:
    """The stored value: frame header, sealed meta, sealed record."""
    meta_json = json.dumps(dataclasses.asdict(meta), separators=(",", ":")).encode("utf-8")
    sealed_meta = keyring.seal(meta_json, key_material=b"", context=_meta_context(ticket.handle))
    sealed_record = keyring.seal(
        plaintext, key_material=ticket.session_key.encode("ascii"), context=_record_context(ticket)
    )
    return _FRAME.pack(VALUE_VERSION, len(sealed_meta)) + sealed_meta + sealed_record


def _split(value: bytes) -> tuple[bytes, bytes]:
    version, meta_length = _FRAME.unpack_from(value)
    if version != VALUE_VERSION:
        raise ValueError(f"unknown session value version {version}")
    start = _FRAME.size
    return value[start : start + meta_length], value[start + meta_length :]


def open_meta(keyring: KeyRing, handle: str, value: bytes) -> SessionMeta:
    """The meta part; raises SealError, ValueError, TypeError, KeyError or struct.error."""
    sealed_meta, _ = _split(value)
    plain = keyring.open_(sealed_meta, key_material=b"", context=_meta_context(handle))
    fields: dict[str, Any] = json.loads(plain)
    return SessionMeta(**fields)


def open_record(keyring: KeyRing, ticket: Ticket, value: bytes) -> bytes:
    """The record's JSON; raises SealError, ValueError or struct.error."""
    _, sealed_record = _split(value)
    return keyring.open_(
        sealed_record,
        key_material=ticket.session_key.encode("ascii"),
        context=_record_context(ticket),
    )
