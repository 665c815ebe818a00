"""Where a session's parts live in the store: key names and index members.

Every variable part of a key is a SHA-256 in hex, so store keys never carry session ids,
subjects, sids or login states in clear (the prefix of the store comes in front):

- ``sess:<h(session id)>``  the sealed session (see codec)
- ``lock:<h(session id)>``  its refresh lock
- ``login:<h(binding)>``    a browser's pending login (sealed), found by its binding cookie
- ``idx:sub:<mac(issuer, sub)>`` and ``idx:sid:<mac(issuer, sid)>``: sets of members
  ``<h(session id)>:<absolute expiry, epoch seconds>``, so stale members are found
  without reading the sessions. The index names are keyed MACs (not plain hashes): a
  neighbour on the same Redis cannot compute, and so cannot delete, one user's index to
  keep their sessions alive through a logout.
"""

from __future__ import annotations

import math
import re

from gateway.crypto import digest

INVALIDATE_CHANNEL = "invalidate"  # message: space-separated handles saved or destroyed


def sess_key(handle: str) -> str:
    return "sess:" + handle


def lock_key(handle: str) -> str:
    return "lock:" + handle


LOGIN_PREFIX = "login:"


def login_key(binding: str) -> str:
    return LOGIN_PREFIX + digest(binding)


_STATE_ID = re.compile(r"[\x21-\x7e]{1,512}")


def valid_state_id(state_id: str) -> bool:
    """Whether ``state_id`` could be one (1-512 visible ASCII): it comes from a query string."""
    return _STATE_ID.fullmatch(state_id) is not None


def index_names(macs: list[str], kind: str) -> list[str]:
    """The keys of one index (``kind`` "sub" or "sid"), one per server secret, current first."""
    return [f"idx:{kind}:{mac}" for mac in macs]


def index_input(issuer: str, value: str) -> bytes:
    return (issuer + "\x00" + value).encode("utf-8", "surrogateescape")


def index_member(handle: str, expires_at: float) -> str:
    return f"{handle}:{math.ceil(expires_at)}"


def member_handle(member: str) -> str:
    return member.partition(":")[0]


def member_expired(member: str, now: float) -> bool:
    _, _, expiry = member.partition(":")
    return expiry.isdigit() and int(expiry) <= now
