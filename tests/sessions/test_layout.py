"""The store's key layout: names earlier versions wrote, index inputs and members."""

from __future__ import annotations

import hashlib

import pytest

from gateway.sessions.layout import (
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

HANDLE = hashlib.sha256(b"session-id").hexdigest()


def test_key_names_are_the_ones_earlier_versions_wrote() -> None:
    """Sessions, refresh locks and pending logins stored by the previous version are found
    after an upgrade (a changed name logs everyone out, or lets two refreshes run at once)."""
    assert sess_key(HANDLE) == "sess:" + HANDLE
    assert lock_key(HANDLE) == "lock:" + HANDLE
    assert sess_key("") == "sess:"  # the prefix the admin listing scans


def test_a_pending_login_is_found_by_the_hash_of_its_binding_only() -> None:
    """The store key of a pending login is ``login:`` and the SHA-256 of the binding
    cookie: the cookie's value never appears in the store."""
    binding = "binding-cookie-value"
    key = login_key(binding)
    assert key == "login:" + hashlib.sha256(binding.encode()).hexdigest()
    assert binding not in key
    assert login_key("other") != key


def test_index_input_keeps_issuer_and_value_apart() -> None:
    """The MAC input is ``issuer NUL value`` in UTF-8, so index names written by the
    previous version are still found by logout."""
    assert index_input("https://idp.example.com", "alice") == b"https://idp.example.com\x00alice"
    assert index_input("https://idp.example.com/a", "lice") != index_input(
        "https://idp.example.com", "alice"
    )


def test_a_subject_with_a_lone_surrogate_still_has_an_index() -> None:
    """A ``sub`` that JSON decoded to a lone surrogate (``"\\udcff"``) gets an index of its
    own (not an error that would leave its sessions out of reach of logout), distinct from
    its neighbours'."""
    assert index_input("iss", "\udcff") == b"iss\x00\xff"
    assert index_input("\udcfe", "x") == b"\xfe\x00x"
    assert index_input("iss", "\udcff") != index_input("iss", "\udcfe")


def test_index_names_one_per_secret_current_first() -> None:
    """One index key per server secret's MAC, in the ring's order, named by kind."""
    assert index_names(["m1", "m2"], "sub") == ["idx:sub:m1", "idx:sub:m2"]
    assert index_names(["m1"], "sid") == ["idx:sid:m1"]


def test_a_member_names_its_handle_and_its_whole_second_of_expiry() -> None:
    """A member is ``<handle>:<expiry rounded up>``: never pruned before its session ends."""
    assert index_member(HANDLE, 1_700_000_000.2) == f"{HANDLE}:1700000001"
    assert index_member(HANDLE, 1_700_000_000.0) == f"{HANDLE}:1700000000"
    assert member_handle(index_member(HANDLE, 5.5)) == HANDLE


def test_a_member_leads_only_to_the_handle_it_starts_with() -> None:
    """The handle ends at the first colon: a planted member with more colons, or none,
    leads to the handle it starts with and never to an empty or shifted one."""
    assert member_handle(f"{HANDLE}:1:2") == HANDLE
    assert member_handle(HANDLE) == HANDLE
    assert member_handle(":5") == ""


@pytest.mark.parametrize(
    ("member", "now", "expired"),
    [
        ("h:100", 99.9, False),
        ("h:100", 100.0, True),  # its expiry is its last moment: gone at it
        ("h:100", 100.5, True),
        ("h:100:7", 200.0, False),  # no number after the first colon
        ("h:soon", 1e12, False),  # garbage is never "expired" (nor an error)
        ("h:", 1e12, False),
        ("12345", 1e12, False),  # no expiry at all, however digit-like the handle
        ("h:-5", 1e12, False),
    ],
)
def test_member_expiry(member: str, now: float, expired: bool) -> None:
    """Only a member whose part after the first colon is a number of seconds at or
    before now counts as expired (and is pruned from its index)."""
    assert member_expired(member, now) is expired


@pytest.mark.parametrize(
    ("state_id", "valid"),
    [
        ("a", True),
        ("~" * 512, True),
        ("!" + "x" * 510 + "~", True),
        ("", False),
        ("x" * 513, False),
        ("with space", False),
        ("tab\tin", False),
        ("é", False),
        ("\x7f", False),
        ("line\n", False),
    ],
)
def test_state_ids_are_1_to_512_visible_ascii(state_id: str, valid: bool) -> None:
    """A binding or state id from a query string is 1-512 visible ASCII characters."""
    assert valid_state_id(state_id) is valid
