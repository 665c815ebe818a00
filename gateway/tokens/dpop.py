"""DPoP (RFC 9449) at the resource: a token bound to a key (`cnf.jkt`) is used only with a
fresh proof, signed by that key, for exactly this request."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jwt

from gateway.config.model import Dpop
from gateway.crypto import digest
from gateway.errors import BadRequest, DpopRefused
from gateway.policy.canonical import canonical_path
from gateway.sessions.shared import SharedState
from gateway.tokens.signing_keys import thumbprint

PROOF_TYPE = "dpop+jwt"
REPLAY_CACHE = "dpop-jti"  # the shared store's cache name (keys, metrics)
MAX_PROOF_BYTES = 8 * 1024
MAX_JTI_CHARS = 256
# JWK members that only a private key has: a proof must carry its public key alone.
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_DEFAULT_PORTS = {"http": "80", "https": "443"}


@dataclass(frozen=True, slots=True)
class Proof:
    """A proof whose signature, type, method, URL, time and token hash were checked."""

    jkt: str  # RFC 7638 thumbprint of the proof's key
    jti: str


def bound_key(claims: dict[str, Any]) -> str | None:
    """The `cnf.jkt` a token is bound to, or None for a plain bearer token."""
    cnf = claims.get("cnf")
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    return jkt if isinstance(jkt, str) and jkt else None


def token_hash(token: str) -> str:
    """`ath`: base64url(SHA-256(access token)) without padding (RFC 9449 4.2)."""
    hashed = hashlib.sha256(token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(hashed).rstrip(b"=").decode("ascii")


def normalized_url(value: str) -> str | None:
    """scheme://host[:port]/path without query or fragment, the path read as the gateway
    reads request paths (RFC 9449 4.3 compares URIs after RFC 3986 normalisation)."""
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or "@" in parts.netloc or not parts.hostname:
        return None
    host = parts.netloc.lower().rpartition(":")[0] if port is not None else parts.netloc.lower()
    if port is not None and str(port) != _DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"
    try:
        path = canonical_path(parts.path or "/").encoded
    except BadRequest:
        return None
    return f"{scheme}://{host}{path}"


class DpopVerifier:
    """Checks proofs and binding for one configuration; used jtis are claimed in a store
    shared by the deployment's instances, sealed like every other shared entry."""

    def __init__(
        self,
        config: Dpop,
        replay: SharedState | None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.algorithms = tuple(config.algorithms)
        self._replay = replay
        self._clock = clock

    def refused(self, message: str, error: str | None = "invalid_dpop_proof") -> DpopRefused:
        return DpopRefused(message, error=error, algorithms=self.algorithms)

    async def check(
        self,
        *,
        scheme: str,
        token: str,
        claims: dict[str, Any],
        proofs: Sequence[str],
        method: str,
        url: str,
        required: bool,
    ) -> None:
        """Refuse (DpopRefused) unless the token's binding and the request's proof agree."""
        jkt = bound_key(claims)
        if scheme != "dpop":
            if jkt is not None:
                raise self.refused(
                    "The access token is DPoP-bound: send it with the DPoP scheme and a proof.",
                    "invalid_token",
                )
            if required:
                raise self.refused("This resource accepts only DPoP-bound tokens.", "invalid_token")
            return
        if jkt is None:
            raise self.refused("The access token is not DPoP-bound.", "invalid_token")
        if len(proofs) != 1:
            raise self.refused("Send exactly one DPoP proof header.")
        proof = self.verify(proofs[0], method=method, url=url, token=token)
        if proof.jkt != jkt:
            raise self.refused(
                "The DPoP proof is signed by another key than the token is bound to.",
                "invalid_token",
            )
        await self._claim(proof)

    def verify(self, proof: str, *, method: str, url: str, token: str) -> Proof:
        """The proof, checked against this request; raises DpopRefused (invalid_dpop_proof)."""
        if len(proof) > MAX_PROOF_BYTES:
            raise self.refused("The DPoP proof is too large.")
        header = self._header(proof)
        alg = header["alg"]
        jwk = header["jwk"]
        try:
            key = jwt.PyJWK(jwk, algorithm=alg)
            claims = jwt.decode(
                proof,
                key.key,
                algorithms=[alg],
                options={
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "verify_aud": False,
                    "require": ["jti", "htm", "htu", "iat"],
                },
            )
        except jwt.MissingRequiredClaimError as exc:
            raise self.refused(f"The DPoP proof has no {exc.claim} claim.") from None
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            raise self.refused("The DPoP proof's signature or key is invalid.") from None
        self._check_claims(claims, method=method, url=url, token=token)
        try:
            jkt = thumbprint(jwk)
        except (KeyError, TypeError):
            raise self.refused("The DPoP proof's key is not usable.") from None
        return Proof(jkt=jkt, jti=claims["jti"])

    def _header(self, proof: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(proof)
        except jwt.PyJWTError:
            raise self.refused("The DPoP proof is malformed.") from None
        if header.get("typ") != PROOF_TYPE:
            raise self.refused("The DPoP proof's typ is not dpop+jwt.")
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise self.refused("The DPoP proof's algorithm is not accepted.")
        jwk = header.get("jwk")
        if not isinstance(jwk, dict) or _PRIVATE_MEMBERS & set(jwk):
            raise self.refused("The DPoP proof must carry its public key (jwk).")
        if "crit" in header:
            raise self.refused("The DPoP proof requires extensions this service lacks.")
        return header

    def _check_claims(self, claims: dict[str, Any], *, method: str, url: str, token: str) -> None:
        jti = claims.get("jti")
        if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI_CHARS:
            raise self.refused("The DPoP proof's jti is not a short string.")
        if claims.get("htm") != method:
            raise self.refused("The DPoP proof is for another HTTP method (htm).")
        htu = claims.get("htu")
        # An htu that cannot be read matches nothing, not even a request URL that cannot.
        target = normalized_url(htu) if isinstance(htu, str) else None
        if target is None or target != normalized_url(url):
            raise self.refused("The DPoP proof is for another URL (htu).")
        iat = claims.get("iat")
        if isinstance(iat, bool) or not isinstance(iat, int | float):
            raise self.refused("The DPoP proof's iat is not a number.")
        now, leeway = self._clock(), self.config.leeway
        if iat > now + leeway:
            raise self.refused("The DPoP proof was issued in the future (iat).")
        if iat < now - self.config.max_age - leeway:
            raise self.refused("The DPoP proof is too old (iat).")
        if claims.get("ath") != token_hash(token):
            raise self.refused("The DPoP proof is for another access token (ath).")

    async def _claim(self, proof: Proof) -> None:
        """Spend the proof's jti; a proof seen before (here or on another instance) is refused.

        The mark lives as long as the proof's iat is acceptable: after that the proof is
        refused as too old anyway.
        """
        if self._replay is None:
            raise self.refused("DPoP proofs cannot be checked for replay here.", None)
        ttl = self.config.max_age + 2 * self.config.leeway
        name = digest(proof.jkt + "\n" + proof.jti)
        if not await self._replay.claim(REPLAY_CACHE, name, ttl):
            raise self.refused("The DPoP proof was already used (jti).")


def _quoted(value: str) -> str:
    """Characters a challenge's quoted value may hold (no quote, no backslash)."""
    return "".join(ch for ch in value if " " <= ch <= "~" and ch not in '"\\')


def dpop_challenge(error: DpopRefused, realm: str) -> str:
    """The RFC 9449 7.1 challenge: `DPoP` with the error and the accepted algorithms."""
    params = [("realm", realm)]
    if error.error is not None:
        params += [("error", error.error), ("error_description", error.public_message)]
    params.append(("algs", " ".join(error.algorithms)))
    return "DPoP " + ", ".join(f'{name}="{_quoted(value)}"' for name, value in params)
