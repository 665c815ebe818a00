"""DPoP (RFC 9449) at the resource, without a network: each check that refuses a proof says
which, with an injected clock and a replay store that records what it was asked to keep."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.config.model import Dpop
from gateway.crypto import KeyRing, digest
from gateway.errors import DpopRefused
from gateway.secret import Secret
from gateway.sessions.shared import SharedState
from gateway.tokens.dpop import (
    MAX_JTI_CHARS,
    MAX_PROOF_BYTES,
    REPLAY_CACHE,
    DpopVerifier,
    bound_key,
    dpop_challenge,
    normalized_url,
    token_hash,
)
from tests.support.dpop import DpopKey

NOW = 1_800_000_000.0
URL = "https://api.example/items"
TOKEN = "tok-123"


class ReplayStore:
    """The shared store's claim operations on a dict; remembers each mark's ttl."""

    def __init__(self) -> None:
        self.values: dict[str, bytes] = {}
        self.ttls: dict[str, float] = {}

    async def get(self, key: str) -> bytes | None:
        return self.values.get(key)

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        self.values[key], self.ttls[key] = value, ttl

    async def set_if_absent(self, key: str, value: bytes, ttl: float) -> bool:
        if key in self.values:
            return False
        await self.set(key, value, ttl)
        return True

    async def replace(self, key: str, expected: bytes, value: bytes, ttl: float) -> bool:
        if self.values.get(key) != expected:
            return False
        await self.set(key, value, ttl)
        return True

    async def delete(self, *keys: str) -> int:
        return sum(self.values.pop(k, None) is not None for k in keys)


def shared(store: ReplayStore, now: float = NOW) -> SharedState:
    ring = KeyRing([Secret("dpop-test-secret-0123456789abcdef0123")])
    return SharedState(store, ring, "test", clock=lambda: now)


def verifier(
    config: Dpop | None = None, *, now: float = NOW, store: ReplayStore | None = None
) -> DpopVerifier:
    replay = shared(store, now) if store is not None else None
    return DpopVerifier(config or Dpop(), replay, clock=lambda: now)


def signed(
    key: DpopKey,
    claims: dict[str, Any],
    *,
    algorithm: str = "ES256",
    signer: Any = None,
    **header: Any,
) -> str:
    """A proof with exactly these claims and header members (None drops typ)."""
    headers = {"typ": "dpop+jwt", "jwk": key.public_jwk, **header}
    return jwt.encode(claims, signer or key._key, algorithm=algorithm, headers=headers)


def claims_for(method: str = "GET", url: Any = URL, **extra: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {"htm": method, "htu": url, "iat": NOW, "jti": "jti-1"}
    claims["ath"] = token_hash(TOKEN)
    claims.update(extra)
    return {k: v for k, v in claims.items() if v is not None}


def refusal(proof: str, *, url: str = URL, config: Dpop | None = None, now: float = NOW) -> str:
    with pytest.raises(DpopRefused) as refused:
        verifier(config, now=now).verify(proof, method="GET", url=url, token=TOKEN)
    assert refused.value.error == "invalid_dpop_proof"
    return refused.value.public_message


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_bound_key_is_a_non_empty_string_in_cnf() -> None:
    """Only a non-empty string `cnf.jkt` binds a token to a key."""
    assert bound_key({"cnf": {"jkt": "abc"}}) == "abc"
    unbound: list[dict[str, Any]] = [
        {}, {"cnf": "jkt"}, {"cnf": {"jkt": ""}}, {"cnf": {"jkt": 5}}, {"cnf": {}}
    ]  # fmt: skip
    for claims in unbound:
        assert bound_key(claims) is None


def test_token_hash_is_rfc_9449s_ath() -> None:
    """`ath` is computed as in the example of RFC 9449 section 7.1."""
    token = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"
    assert token_hash(token) == "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"


@pytest.mark.parametrize(
    ("value", "normal"),
    [
        ("HTTPS://API.example:443/a%7Eb?x=1#f", "https://api.example/a~b"),
        ("http://H:80", "http://h/"),
        ("http://h:8080/", "http://h:8080/"),
        ("http://h:443/", "http://h:443/"),
        ("https://h:80/", "https://h:80/"),
        ("https://[::1]:8443/x", "https://[::1]:8443/x"),
        ("https://[::1]:443/x", "https://[::1]/x"),
        ("https://h/a/../b", None),
        ("https://h/a%00b", None),
        ("ftp://h/", None),
        ("https://user@h/", None),
        ("https://h:99999/", None),
        ("https://h:x/", None),
        ("https:///path", None),
        ("https://:443/", None),
    ],
)
def test_url_normalisation(value: str, normal: str | None) -> None:
    """htu compares without query or fragment, with default ports dropped and case folded,
    the path read as the gateway reads request paths; what it cannot read matches nothing."""
    assert normalized_url(value) == normal


def test_a_good_proof_names_its_key_and_jti() -> None:
    """A proof for this request, this token and now verifies and yields key and jti."""
    key = DpopKey()
    proof = verifier().verify(signed(key, claims_for()), method="GET", url=URL, token=TOKEN)
    assert (proof.jkt, proof.jti) == (key.jkt, "jti-1")


def test_a_proof_for_another_method_url_or_token_is_refused() -> None:
    """htm, htu and ath must all match this request and this token, each saying which."""
    key = DpopKey()
    assert refusal(signed(key, claims_for("POST"))) == (
        "The DPoP proof is for another HTTP method (htm)."
    )
    assert refusal(signed(key, claims_for(method="get"))) == (
        "The DPoP proof is for another HTTP method (htm)."
    )
    another_url = "The DPoP proof is for another URL (htu)."
    assert refusal(signed(key, claims_for(url="https://api.example/other"))) == another_url
    assert refusal(signed(key, claims_for(url="https://evil.example/items"))) == another_url
    assert refusal(signed(key, claims_for(url=["https://api.example/items"]))) == another_url
    # An htu that cannot be read never matches, not even a request URL that cannot either.
    assert refusal(signed(key, claims_for(url="ftp://x/")), url="https://u@x/") == another_url
    another_token = "The DPoP proof is for another access token (ath)."
    assert refusal(signed(key, claims_for(ath=token_hash("another")))) == another_token
    assert refusal(signed(key, claims_for(ath=None))) == another_token
    # The same URL in another spelling is the same URL.
    good = signed(key, claims_for(url="HTTPS://api.example:443/items?page=2"))
    assert verifier().verify(good, method="GET", url=URL, token=TOKEN).jkt == key.jkt


def test_proof_age_is_judged_by_the_injected_clock_with_leeway() -> None:
    """iat may be up to leeway in the future and max_age plus leeway in the past; beyond
    either edge the proof is refused, saying which."""
    config = Dpop(max_age=60, leeway=5)
    key = DpopKey()
    accepted = (NOW + 5, NOW - 65, NOW - 64.5, NOW)
    for iat in accepted:
        proof = signed(key, claims_for(iat=iat))
        assert verifier(config).verify(proof, method="GET", url=URL, token=TOKEN).jkt == key.jkt
    future = "The DPoP proof was issued in the future (iat)."
    assert refusal(signed(key, claims_for(iat=NOW + 5.5)), config=config) == future
    assert refusal(signed(key, claims_for(iat=NOW + 3600)), config=config) == future
    old = "The DPoP proof is too old (iat)."
    assert refusal(signed(key, claims_for(iat=NOW - 65.5)), config=config) == old
    assert refusal(signed(key, claims_for(iat=NOW - 3600)), config=config) == old
    # Without leeway the edges are exact.
    strict = Dpop(max_age=60, leeway=0)
    assert refusal(signed(key, claims_for(iat=NOW + 1)), config=strict) == future
    assert refusal(signed(key, claims_for(iat=NOW - 61)), config=strict) == old


def test_proof_time_is_not_judged_by_the_library_or_the_wall_clock() -> None:
    """A proof that is fresh by the injected clock passes even when the wall clock disagrees,
    and exp, nbf and aud in a proof do not matter (RFC 9449 defines only iat)."""
    key = DpopKey()
    ahead = time.time() + 3600
    proof = signed(key, claims_for(iat=ahead))
    assert verifier(now=ahead).verify(proof, method="GET", url=URL, token=TOKEN).jkt == key.jkt
    odd = claims_for(exp=time.time() - 3600, nbf=time.time() + 3600, aud="https://elsewhere")
    assert verifier().verify(signed(key, odd), method="GET", url=URL, token=TOKEN).jkt


@pytest.mark.parametrize("iat", [True, "1800000000", None, [NOW]])
def test_iat_must_be_a_number(iat: Any) -> None:
    """A boolean, string or list iat is refused (a missing one: the proof has no iat)."""
    proof = signed(DpopKey(), claims_for(iat=iat))
    reason = "The DPoP proof has no iat claim." if iat is None else None
    assert refusal(proof) == (reason or "The DPoP proof's iat is not a number.")


@pytest.mark.parametrize("claim", ["jti", "htm", "htu", "iat"])
def test_each_required_claim_must_be_present(claim: str) -> None:
    """A proof without jti, htm, htu or iat is refused, naming the claim."""
    claims = {k: v for k, v in claims_for().items() if k != claim}
    assert refusal(signed(DpopKey(), claims)) == f"The DPoP proof has no {claim} claim."


def test_jti_is_a_short_non_empty_string() -> None:
    """jti may hold up to MAX_JTI_CHARS characters; empty, longer or not a string is refused."""
    key = DpopKey()
    longest = "j" * MAX_JTI_CHARS
    proof = verifier().verify(
        signed(key, claims_for(jti=longest)), method="GET", url=URL, token=TOKEN
    )
    assert proof.jti == longest
    assert verifier().verify(signed(key, claims_for(jti="j")), method="GET", url=URL, token=TOKEN)
    for jti in ("", "j" * (MAX_JTI_CHARS + 1)):
        assert refusal(signed(key, claims_for(jti=jti))) == (
            "The DPoP proof's jti is not a short string."
        )
    for odd in (17, ["j"]):  # PyJWT refuses these already, as an invalid token
        assert refusal(signed(key, claims_for(jti=odd))) == (
            "The DPoP proof's signature or key is invalid."
        )


def _proof_of_length(key: DpopKey, length: int) -> str:
    for pad in range(length):
        for extra in ("", "x", "xx"):
            proof = signed(key, claims_for(pad="p" * pad), x=extra)
            if len(proof) == length:
                return proof
    raise AssertionError(f"no proof of {length} characters")


def test_proof_size_cap() -> None:
    """A proof of MAX_PROOF_BYTES characters is read; one character more is refused."""
    key = DpopKey()
    largest = _proof_of_length(key, MAX_PROOF_BYTES)
    assert verifier().verify(largest, method="GET", url=URL, token=TOKEN).jkt == key.jkt
    assert refusal(_proof_of_length(key, MAX_PROOF_BYTES + 1)) == "The DPoP proof is too large."


def test_forged_headers_are_refused_saying_why() -> None:
    """Malformed proofs, another typ, an unaccepted or symmetric algorithm, a missing or
    private key and critical extensions are each refused with their reason."""
    key = DpopKey()
    claims = claims_for()
    assert refusal("not-a-jwt") == "The DPoP proof is malformed."
    assert refusal(f"{_b64({'typ': 'dpop+jwt'})[:-1]}!.e30.") == "The DPoP proof is malformed."
    for typ in ("JWT", None, "DPOP+JWT"):
        assert refusal(signed(key, claims, typ=typ)) == "The DPoP proof's typ is not dpop+jwt."
    algorithm = "The DPoP proof's algorithm is not accepted."
    hs = jwt.encode(
        claims, "k" * 32, algorithm="HS256", headers={"typ": "dpop+jwt", "jwk": key.public_jwk}
    )
    assert refusal(hs) == algorithm
    unsigned = f"{_b64({'typ': 'dpop+jwt', 'alg': 'none', 'jwk': key.public_jwk})}.{_b64(claims)}."
    assert refusal(unsigned) == algorithm
    listed = f"{_b64({'typ': 'dpop+jwt', 'alg': ['ES256'], 'jwk': key.public_jwk})}.e30.sig"
    assert refusal(listed) == algorithm
    p384 = ec.generate_private_key(ec.SECP384R1())
    es384 = jwt.encode(
        claims, p384, algorithm="ES384", headers={"typ": "dpop+jwt", "jwk": key.public_jwk}
    )
    assert refusal(es384, config=Dpop(algorithms=["ES256"])) == algorithm
    public_key = "The DPoP proof must carry its public key (jwk)."
    assert refusal(signed(key, claims, jwk=None)) == public_key
    assert refusal(signed(key, claims, jwk="key")) == public_key
    for member in ("d", "p", "q", "dp", "dq", "qi", "oth", "k"):
        private = {**key.public_jwk, member: "AAAA"}
        assert refusal(signed(key, claims, jwk=private)) == public_key
    # PyJWT itself refuses unknown extensions; b64 (RFC 7797) it knows, the gateway does not.
    crit = {"typ": "dpop+jwt", "alg": "ES256", "jwk": key.public_jwk, "crit": ["b64"], "b64": True}
    assert refusal(f"{_b64(crit)}.{_b64(claims)}.c2ln") == (
        "The DPoP proof requires extensions this service lacks."
    )
    assert refusal(signed(key, claims, crit=["exp"])) == "The DPoP proof is malformed."


def test_a_proof_not_signed_by_its_own_key_is_refused() -> None:
    """The signature must verify with the header's jwk under the header's algorithm."""
    key, other = DpopKey(), DpopKey()
    invalid = "The DPoP proof's signature or key is invalid."
    assert refusal(signed(key, claims_for(), signer=other._key)) == invalid
    assert refusal(signed(key, claims_for(), jwk={"kty": "EC", "crv": "P-256"})) == invalid
    tampered = signed(key, claims_for()).split(".")
    tampered[1] = _b64({**claims_for(), "htm": "POST"})
    assert refusal(".".join(tampered)) == invalid


def test_the_headers_algorithm_counts_not_an_alg_member_of_the_jwk() -> None:
    """A proof is verified under the header's alg (RFC 9449 4.2); an `alg` member some
    client libraries leave in the exported JWK does not change how it is read."""
    key = DpopKey()
    jwk = {**key.public_jwk, "alg": "RS256"}
    proof = signed(key, claims_for(), jwk=jwk)
    assert verifier().verify(proof, method="GET", url=URL, token=TOKEN).jkt == key.jkt


def test_other_accepted_algorithms_verify() -> None:
    """An ES384 proof verifies when ES384 is configured (the header's alg is used)."""
    p384 = ec.generate_private_key(ec.SECP384R1())
    jwk = dict(jwt.algorithms.ECAlgorithm.to_jwk(p384.public_key(), as_dict=True))
    proof = jwt.encode(
        claims_for(), p384, algorithm="ES384", headers={"typ": "dpop+jwt", "jwk": jwk}
    )
    config = Dpop(algorithms=["ES256", "ES384"])
    assert verifier(config).verify(proof, method="GET", url=URL, token=TOKEN).jti == "jti-1"


async def check(
    v: DpopVerifier, *, scheme: str = "dpop", claims: dict[str, Any], proofs: list[str], **kw: Any
) -> None:
    args: dict[str, Any] = {"method": "GET", "url": URL, "required": False, **kw}
    await v.check(scheme=scheme, token=TOKEN, claims=claims, proofs=proofs, **args)


async def test_binding_and_scheme_must_agree() -> None:
    """A bound token needs the DPoP scheme; an unbound one cannot use it, nor pass where only
    bound tokens are accepted; a plain bearer token passes elsewhere without any store."""
    key = DpopKey()
    bound = {"cnf": {"jkt": key.jkt}}
    proof = signed(key, claims_for())
    cases = [
        ("bearer", bound, False, "The access token is DPoP-bound: send it with the DPoP "
         "scheme and a proof."),
        ("bearer", {}, True, "This resource accepts only DPoP-bound tokens."),
        ("dpop", {}, False, "The access token is not DPoP-bound."),
        ("dpop", {"cnf": {"jkt": DpopKey().jkt}}, False,
         "The DPoP proof is signed by another key than the token is bound to."),
    ]  # fmt: skip
    for scheme, claims, required, reason in cases:
        with pytest.raises(DpopRefused) as refused:
            await check(verifier(store=ReplayStore()), scheme=scheme, claims=claims,
                        proofs=[proof], required=required)  # fmt: skip
        assert (refused.value.public_message, refused.value.error) == (reason, "invalid_token")
    await check(verifier(), scheme="bearer", claims={}, proofs=[])


async def test_exactly_one_proof() -> None:
    """No proof header, or two, is refused as a defective proof."""
    key = DpopKey()
    proof = signed(key, claims_for())
    for proofs in ([], [proof, proof]):
        with pytest.raises(DpopRefused) as refused:
            await check(verifier(store=ReplayStore()), claims={"cnf": {"jkt": key.jkt}},
                        proofs=proofs)  # fmt: skip
        assert refused.value.public_message == "Send exactly one DPoP proof header."
        assert refused.value.error == "invalid_dpop_proof"


async def test_a_replayed_proof_is_refused() -> None:
    """A proof is spent on first use; the same proof again (here or on another instance of
    the deployment) is refused. The same jti from another key is another proof."""
    store = ReplayStore()
    key, other = DpopKey(), DpopKey()
    proof = signed(key, claims_for())
    await check(verifier(store=store), claims={"cnf": {"jkt": key.jkt}}, proofs=[proof])
    with pytest.raises(DpopRefused) as refused:
        await check(verifier(store=store), claims={"cnf": {"jkt": key.jkt}}, proofs=[proof])
    assert refused.value.public_message == "The DPoP proof was already used (jti)."
    assert refused.value.error == "invalid_dpop_proof"
    second = signed(other, claims_for())
    await check(verifier(store=store), claims={"cnf": {"jkt": other.jkt}}, proofs=[second])


async def test_the_replay_mark_outlives_every_acceptable_proof() -> None:
    """The jti mark is kept for max_age plus leeway on both sides, under a name all
    instances (and versions) of the deployment agree on."""
    store = ReplayStore()
    key = DpopKey()
    config = Dpop(max_age=60, leeway=5)
    await check(
        verifier(config, store=store),
        claims={"cnf": {"jkt": key.jkt}},
        proofs=[signed(key, claims_for())],
    )
    name = shared(store).key(REPLAY_CACHE, digest(key.jkt + "\n" + "jti-1"))
    assert store.ttls == {name: 70}


async def test_without_a_replay_store_bound_tokens_are_refused() -> None:
    """Without a store to spend jtis in, a valid proof cannot be accepted (fail closed)."""
    key = DpopKey()
    with pytest.raises(DpopRefused) as refused:
        await check(
            verifier(), claims={"cnf": {"jkt": key.jkt}}, proofs=[signed(key, claims_for())]
        )
    assert refused.value.public_message == "DPoP proofs cannot be checked for replay here."
    assert refused.value.error is None


def test_challenge_names_the_error_and_accepted_algorithms() -> None:
    """The WWW-Authenticate challenge carries error, description and algs, quoted safely;
    without an error code only realm and algs."""
    v = verifier(Dpop(algorithms=["ES256", "EdDSA"]))
    error = v.refused('Bad "proof" \\ é\x01 ~ok X')
    assert dpop_challenge(error, "api") == (
        'DPoP realm="api", error="invalid_dpop_proof", '
        'error_description="Bad proof   ~ok X", algs="ES256 EdDSA"'
    )
    assert (
        dpop_challenge(v.refused("x", None), 'r"e\\alm') == 'DPoP realm="realm", algs="ES256 EdDSA"'
    )
    assert v.refused("x", "invalid_token").algorithms == ("ES256", "EdDSA")
