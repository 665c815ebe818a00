"""KeyRing: sealing with rotation, tamper detection, signing; random tokens."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.crypto import KeyRing, SealError, random_token
from gateway.secret import Secret

OLD, NEW, OTHER = Secret("o" * 40), Secret("n" * 40), Secret("x" * 40)
MATERIAL, CONTEXT = b"per-session-key", b"session\x00id-1"


def seal(ring: KeyRing, plaintext: bytes = b"tokens") -> bytes:
    return ring.seal(plaintext, key_material=MATERIAL, context=CONTEXT)


def open_(ring: KeyRing, sealed: bytes, **changes: bytes) -> bytes:
    args = {"key_material": MATERIAL, "context": CONTEXT, **changes}
    return ring.open_(sealed, **args)


def test_random_tokens_are_urlsafe_unpadded_and_distinct() -> None:
    """32 bytes give 43 URL-safe characters without '='; no two tokens repeat."""
    tokens = {random_token() for _ in range(1000)}
    assert len(tokens) == 1000
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{43}", t) for t in tokens)
    assert len(random_token(16)) == 22


@given(st.binary(max_size=2048))
def test_seal_then_open_gives_the_plaintext(plaintext: bytes) -> None:
    """Any bytes round-trip; the sealed form never contains them in clear."""
    ring = KeyRing([NEW])
    sealed = seal(ring, plaintext)
    assert plaintext == open_(ring, sealed)
    assert 1 + 4 + 12 + len(plaintext) + 16 == len(sealed)


def test_sealing_twice_differs() -> None:
    """A fresh nonce each time: equal plaintexts give unrelated outputs."""
    ring = KeyRing([NEW])
    assert seal(ring) != seal(ring)


def test_rotation_old_key_still_opens_new_key_seals() -> None:
    """After rotation, old values open; new values use the first secret only."""
    before, after = KeyRing([OLD]), KeyRing([NEW, OLD])
    assert open_(after, seal(before)) == b"tokens"
    fresh = seal(after)
    assert open_(KeyRing([NEW]), fresh) == b"tokens"
    with pytest.raises(SealError, match="not in the ring"):
        open_(before, fresh)


def test_a_retired_key_no_longer_opens() -> None:
    """Dropping a secret from the ring ends what it sealed."""
    with pytest.raises(SealError, match="not in the ring"):
        open_(KeyRing([NEW, OTHER]), seal(KeyRing([OLD])))


def test_every_changed_byte_is_detected() -> None:
    """Flipping any single bit of version, key id, nonce, ciphertext or tag fails."""
    ring = KeyRing([NEW])
    sealed = seal(ring, b"a small secret")
    for index in range(len(sealed)):
        changed = bytearray(sealed)
        changed[index] ^= 0x80
        with pytest.raises(SealError):
            open_(ring, bytes(changed))


@pytest.mark.parametrize(
    "changes", [{"key_material": b"another-key"}, {"context": b"session\x00id-2"}]
)
def test_key_material_and_context_must_match(changes: dict[str, bytes]) -> None:
    """A value opens only with the key material and context it was sealed with."""
    ring = KeyRing([NEW])
    with pytest.raises(SealError, match="does not verify"):
        open_(ring, seal(ring), **changes)


@pytest.mark.parametrize("sealed", [b"", b"\x01", b"\x01" + b"\x00" * 31])
def test_truncated_values_are_refused(sealed: bytes) -> None:
    """Too short to hold header, nonce and tag: SealError, not IndexError."""
    with pytest.raises(SealError, match="truncated"):
        open_(KeyRing([NEW]), sealed)


def test_an_empty_ring_is_refused_and_ephemeral_rings_differ() -> None:
    """No secrets is an error; ephemeral() makes a random ring of its own."""
    with pytest.raises(ValueError, match="at least one secret"):
        KeyRing([])
    first, second = KeyRing.ephemeral(), KeyRing.ephemeral()
    assert first.is_ephemeral
    assert not KeyRing([NEW]).is_ephemeral
    assert open_(first, seal(first)) == b"tokens"
    with pytest.raises(SealError):
        open_(second, seal(first))


def test_sign_and_verify_with_rotation() -> None:
    """Signatures verify with any ring secret, and are made with the first."""
    before, after = KeyRing([OLD]), KeyRing([NEW, OLD])
    signature = before.sign(b"binding")
    assert after.verify(b"binding", signature)
    assert not after.verify(b"binding!", signature)
    assert KeyRing([NEW]).verify(b"binding", after.sign(b"binding"))
    assert not before.verify(b"binding", after.sign(b"binding"))
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", signature)


@pytest.mark.parametrize("signature", ["", "%%%", "é", "AAAA", "a" * 43, "a" * 1000])
def test_malformed_signatures_are_false(signature: str) -> None:
    """Garbage signatures are simply not valid (no exception)."""
    assert not KeyRing([NEW]).verify(b"binding", signature)


def test_a_changed_signature_is_refused() -> None:
    """One character off is enough to fail."""
    ring = KeyRing([NEW])
    signature = ring.sign(b"data")
    changed = ("B" if signature[0] == "A" else "A") + signature[1:]
    assert not ring.verify(b"data", changed)


def test_secrets_do_not_show_in_reprs() -> None:
    """A KeyRing's repr names no secret."""
    ring = KeyRing([Secret("super-secret-value-" + "z" * 30)])
    assert "super-secret" not in repr(ring)
    assert "super-secret" not in str(vars(ring))


def test_derived_rings_are_apart_from_each_other_and_their_parent() -> None:
    """A ring derived for one purpose opens only its own seals and verifies only its own
    signatures; rotation carries over (a derived [new, old] opens a derived [old]'s seal)."""
    parent = KeyRing([NEW])
    shared, other = parent.derive("shared-state"), parent.derive("something-else")
    sealed = seal(shared)
    assert open_(KeyRing([NEW]).derive("shared-state"), sealed) == b"tokens"
    for stranger in (parent, other, KeyRing([OTHER]).derive("shared-state")):
        with pytest.raises(SealError):
            open_(stranger, sealed)
    with pytest.raises(SealError):
        open_(shared, seal(parent))
    assert not parent.verify(b"data", shared.sign(b"data"))
    assert not shared.verify(b"data", parent.sign(b"data"))
    rotated = KeyRing([NEW, OLD]).derive("shared-state")
    assert open_(rotated, seal(KeyRing([OLD]).derive("shared-state"))) == b"tokens"
    assert KeyRing.ephemeral().derive("x").is_ephemeral
