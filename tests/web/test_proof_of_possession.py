"""The proof-of-possession step after a bearer token is accepted, without a network: which
tokens skip the checks (unbound, Bearer scheme, DPoP not required) and which take them and
are refused, each with the reason a client reads; real ES256 proofs and real certificates."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from multidict import CIMultiDict

from gateway.config.model import Dpop, Route
from gateway.errors import DpopRefused, InvalidToken, NoAuthenticator
from gateway.policy.canonical import canonical_path
from gateway.policy.routes import CompiledRoute
from gateway.proxy.headers import ClientView
from gateway.tokens.certificate_binding import certificate_thumbprint
from gateway.tokens.dpop import DpopVerifier
from gateway.types import Principal
from gateway.web.keys import TARGET, VIEW
from gateway.web.proof_of_possession import (
    canonical_target,
    check_proof_of_possession,
    client_certificate,
)
from gateway.web.services import Services
from tests.support.client_certs import ThrowawayCa, escaped
from tests.support.dpop import DpopKey
from tests.tokens.test_dpop import ReplayStore, shared

TOKEN = "tok-abc.def"
CERT_HEADER = "X-Client-Cert"
# The client reached the gateway as https://api.example (a trusted proxy said so); the
# gateway's own listener saw plain http on another host name.
PUBLIC_URL = "https://api.example/items/a%20b"


class FakeTls:
    """ssl.SSLObject.getpeercert's contract: DER bytes with binary_form, else a dict."""

    def __init__(self, der: bytes | None) -> None:
        self._der = der

    def getpeercert(self, binary_form: bool = False) -> Any:
        if self._der is None:
            return None
        return self._der if binary_form else {}


class FakeTransport:
    def __init__(self, tls: FakeTls | None) -> None:
        self._tls = tls

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._tls if name == "ssl_object" and self._tls is not None else default

    def is_closing(self) -> bool:
        return False


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[bytes, str]]:
    """Two client certificates: name -> (DER, PEM)."""
    ca = ThrowawayCa(Path(tmp_path_factory.mktemp("ca")))
    out = {}
    for name in ("alice", "mallory"):
        pem = ca.issue(name)[2]
        der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(Encoding.DER)
        out[name] = (der, pem)
    return out


def request(
    *,
    authorization: str | None = f"Bearer {TOKEN}",
    proofs: tuple[str, ...] = (),
    tls_der: bytes | None = None,
    cert_header: str | None = None,
    trusted_peer: bool = True,
    method: str = "GET",
) -> web.Request:
    headers: CIMultiDict[str] = CIMultiDict()
    if authorization is not None:
        headers.add("Authorization", authorization)
    for proof in proofs:
        headers.add("DPoP", proof)
    if cert_header is not None:
        headers.add(CERT_HEADER, cert_header)
    transport = FakeTransport(FakeTls(tls_der) if tls_der is not None else None)
    req = make_mocked_request(method, "/items/a%20b?q=1", headers=headers, transport=transport)
    req[VIEW] = ClientView(
        peer="10.0.0.1",
        client_ip="192.0.2.7",
        scheme="https",
        host="api.example",
        forwarded_for=(),
        trusted_peer=trusted_peer,
    )
    req[TARGET] = canonical_path("/items/a%20b")
    return req


def services(*, store: ReplayStore | None = None, header: str | None = CERT_HEADER) -> Services:
    verifier = DpopVerifier(Dpop(), shared(store or ReplayStore(), time.time()))
    bearer = SimpleNamespace(
        config=SimpleNamespace(client_certificate_header=header), dpop=verifier
    )
    return cast(Services, SimpleNamespace(bearer=bearer))


def route(*, require_dpop: bool = False) -> CompiledRoute:
    config = Route(
        path="/", upstream="http://127.0.0.1:1", auth="bearer", require_dpop=require_dpop
    )
    return CompiledRoute(index=0, name="api", prefix="/", config=config)


def principal(**cnf: str) -> Principal:
    claims: dict[str, Any] = {"sub": "svc", "iss": "https://op.example"}
    if cnf:
        claims["cnf"] = cnf
    return Principal(kind="bearer", issuer="https://op.example", subject="svc", claims=claims)


async def refusal(req: web.Request, who: Principal, **kwargs: Any) -> InvalidToken:
    """The refusal of the check (an InvalidToken or its DpopRefused subclass)."""
    with pytest.raises(InvalidToken) as refused:
        await check_proof_of_possession(
            req, kwargs.pop("svc", None) or services(), kwargs.pop("on", route()), who, **kwargs
        )
    return refused.value


async def passes(req: web.Request, who: Principal, **kwargs: Any) -> None:
    svc = kwargs.pop("svc", None) or services()
    await check_proof_of_possession(req, svc, kwargs.pop("on", route()), who, **kwargs)


# --- tokens that skip the checks, and those that must not -------------------------------


async def test_unbound_bearer_token_passes_without_proof_or_certificate() -> None:
    """A plain token sent as Bearer on a route without require_dpop needs neither a proof
    nor a certificate (and a stray DPoP header does not make it fail)."""
    await passes(request(), principal())
    await passes(request(proofs=("junk", "junk")), principal())


@pytest.mark.parametrize(
    "cnf",
    [
        {"jwk": {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}},  # RFC 7800, unchecked
        {"jkt": ["a", "b"]},  # malformed: not a thumbprint
        {"jkt": None},
        {"jkt": ""},
        "a string",
    ],
)
async def test_a_binding_the_gateway_cannot_check_is_refused(cnf: Any) -> None:
    """A cnf naming no key thumbprint (jkt) or certificate (x5t#S256) the gateway can
    check is refused, whatever the scheme: holding the token alone must not be enough
    (an outside attack found such tokens accepted as plain Bearer tokens)."""
    who = principal()
    who.claims["cnf"] = cnf
    for req in (request(), request(authorization=f"DPoP {TOKEN}")):
        refused = await refusal(req, who)
        assert not isinstance(refused, DpopRefused)
        assert refused.public_message == (
            "The access token is bound by a confirmation method this gateway cannot check."
        )


async def test_key_bound_token_sent_as_bearer_is_refused() -> None:
    """A cnf.jkt token sent with the Bearer scheme takes the full check: refused, and told
    to use the DPoP scheme (invalid_token), even with a valid proof alongside."""
    key = DpopKey()
    proof = key.proof("GET", PUBLIC_URL, token=TOKEN)
    refused = await refusal(request(proofs=(proof,)), principal(jkt=key.jkt))
    assert isinstance(refused, DpopRefused)
    assert refused.error == "invalid_token"
    assert refused.public_message == (
        "The access token is DPoP-bound: send it with the DPoP scheme and a proof."
    )


async def test_certificate_bound_token_sent_as_bearer_without_certificate_is_refused(
    certs: dict[str, tuple[bytes, str]],
) -> None:
    """A cnf.x5t#S256 token sent as Bearer from a connection without a certificate is
    refused as such (RFC 8705 6.1), not waved through by the unbound-token fast path."""
    bound = principal(**{"x5t#S256": certificate_thumbprint(certs["alice"][0])})
    refused = await refusal(request(), bound)
    assert not isinstance(refused, DpopRefused)
    assert refused.public_message == (
        "The access token is bound to a client certificate; none was sent."
    )


async def test_dpop_scheme_with_unbound_token_is_refused() -> None:
    """A token sent with the DPoP scheme takes the full check: an unbound one is refused."""
    key = DpopKey()
    proof = key.proof("GET", PUBLIC_URL, token=TOKEN)
    refused = await refusal(request(authorization=f"DPoP {TOKEN}", proofs=(proof,)), principal())
    assert isinstance(refused, DpopRefused)
    assert (refused.error, refused.public_message) == (
        "invalid_token",
        "The access token is not DPoP-bound.",
    )


async def test_plain_token_on_route_requiring_dpop_is_refused() -> None:
    """On a require_dpop route an unbound Bearer token is refused, saying DPoP is required."""
    refused = await refusal(request(), principal(), on=route(require_dpop=True))
    assert isinstance(refused, DpopRefused)
    assert (refused.error, refused.public_message) == (
        "invalid_token",
        "This resource accepts only DPoP-bound tokens.",
    )


async def test_without_bearer_issuers_fails_closed() -> None:
    """With no bearer authenticator the check refuses (503) rather than letting it through."""
    svc = cast(Services, SimpleNamespace(bearer=None))
    with pytest.raises(NoAuthenticator, match=r"^no bearer issuers configured$"):
        await check_proof_of_possession(request(), svc, route(), principal())


# --- DPoP proofs against the canonical request ------------------------------------------


async def test_dpop_token_with_proof_for_the_public_url_passes_once() -> None:
    """A bound token with a proof naming the client's scheme, host and path passes (on a
    require_dpop route too); the same proof again is refused as replayed."""
    key = DpopKey()
    proof = key.proof("GET", PUBLIC_URL, token=TOKEN)
    store = ReplayStore()
    svc = services(store=store)
    req = request(authorization=f"DPoP {TOKEN}", proofs=(proof,))
    await passes(req, principal(jkt=key.jkt), svc=svc, on=route(require_dpop=True))
    again = request(authorization=f"DPoP {TOKEN}", proofs=(proof,))
    refused = await refusal(again, principal(jkt=key.jkt), svc=svc)
    assert refused.public_message == "The DPoP proof was already used (jti)."


async def test_proof_must_name_the_url_and_method_the_client_used() -> None:
    """A proof for the gateway's own listener URL, or for another method, is refused."""
    key = DpopKey()
    bound = principal(jkt=key.jkt)
    inner = key.proof("GET", "http://127.0.0.1:8080/items/a%20b", token=TOKEN)
    refused = await refusal(request(authorization=f"DPoP {TOKEN}", proofs=(inner,)), bound)
    assert refused.public_message == "The DPoP proof is for another URL (htu)."
    post = key.proof("POST", PUBLIC_URL, token=TOKEN)
    refused = await refusal(request(authorization=f"DPoP {TOKEN}", proofs=(post,)), bound)
    assert refused.public_message == "The DPoP proof is for another HTTP method (htm)."


async def test_dpop_token_needs_exactly_one_proof_header() -> None:
    """A DPoP-scheme request without a proof header is refused (invalid_dpop_proof)."""
    key = DpopKey()
    refused = await refusal(request(authorization=f"DPoP {TOKEN}"), principal(jkt=key.jkt))
    assert isinstance(refused, DpopRefused)
    assert (refused.error, refused.public_message) == (
        "invalid_dpop_proof",
        "Send exactly one DPoP proof header.",
    )


async def test_proof_is_checked_against_the_given_original_request() -> None:
    """For forward-auth the proof names the original request handed in, not this one."""
    key = DpopKey()
    original = ("POST", "https://app.example/orders")
    proof = key.proof(*original, token=TOKEN)
    req = request(authorization=f"DPoP {TOKEN}", proofs=(proof,))
    await passes(req, principal(jkt=key.jkt), target=original)
    other = key.proof("GET", PUBLIC_URL, token=TOKEN)
    req = request(authorization=f"DPoP {TOKEN}", proofs=(other,))
    refused = await refusal(req, principal(jkt=key.jkt), target=original)
    assert refused.public_message == "The DPoP proof is for another HTTP method (htm)."


def test_canonical_target_is_the_clients_view_of_the_request() -> None:
    """The URL a proof must name: the client's scheme and host, the canonical path, no query."""
    assert canonical_target(request(method="PUT")) == ("PUT", PUBLIC_URL)


# --- certificate-bound tokens -----------------------------------------------------------


async def test_certificate_of_the_tls_connection_is_checked(
    certs: dict[str, tuple[bytes, str]],
) -> None:
    """The certificate of this TLS connection satisfies the binding; another is refused."""
    alice, mallory = certs["alice"][0], certs["mallory"][0]
    bound = principal(**{"x5t#S256": certificate_thumbprint(alice)})
    await passes(request(tls_der=alice), bound)
    refused = await refusal(request(tls_der=mallory), bound)
    assert refused.public_message == "The access token is bound to another client certificate."


async def test_certificate_from_a_trusted_proxy_header_is_checked(
    certs: dict[str, tuple[bytes, str]],
) -> None:
    """A trusted proxy's certificate header satisfies the binding; from an untrusted peer,
    or with no header configured, it is ignored (none was sent)."""
    alice_der, alice_pem = certs["alice"]
    bound = principal(**{"x5t#S256": certificate_thumbprint(alice_der)})
    await passes(request(cert_header=escaped(alice_pem)), bound)
    untrusted = request(cert_header=escaped(alice_pem), trusted_peer=False)
    refused = await refusal(untrusted, bound)
    assert refused.public_message == (
        "The access token is bound to a client certificate; none was sent."
    )
    refused = await refusal(
        request(cert_header=escaped(alice_pem)), bound, svc=services(header=None)
    )
    assert refused.public_message == (
        "The access token is bound to a client certificate; none was sent."
    )


async def test_tls_certificate_wins_over_a_proxy_header(
    certs: dict[str, tuple[bytes, str]],
) -> None:
    """A header cannot replace the certificate of the connection itself."""
    alice, (_, mallory_pem) = certs["alice"][0], certs["mallory"]
    bound = principal(**{"x5t#S256": certificate_thumbprint(alice)})
    await passes(request(tls_der=alice, cert_header=escaped(mallory_pem)), bound)
    mallory_bound = principal(**{"x5t#S256": certificate_thumbprint(certs["mallory"][0])})
    refused = await refusal(request(tls_der=alice, cert_header=escaped(mallory_pem)), mallory_bound)
    assert refused.public_message == "The access token is bound to another client certificate."


def test_client_certificate_thumbprints(certs: dict[str, tuple[bytes, str]]) -> None:
    """x5t#S256 of the TLS certificate, else of a trusted header's, else None."""
    alice_der, alice_pem = certs["alice"]
    print_ = certificate_thumbprint(alice_der)
    assert client_certificate(request(tls_der=alice_der), CERT_HEADER) == print_
    assert client_certificate(request(cert_header=escaped(alice_pem)), CERT_HEADER) == print_
    assert client_certificate(request(cert_header=escaped(alice_pem)), None) is None
    assert client_certificate(request(cert_header="not a certificate"), CERT_HEADER) is None
    assert client_certificate(request(), CERT_HEADER) is None


def test_a_request_whose_connection_is_gone_has_no_tls_certificate(
    certs: dict[str, tuple[bytes, str]],
) -> None:
    """When the client's connection is already gone (no transport), there is no TLS
    certificate to read: a trusted proxy's header still counts, and without one None."""
    alice_der, alice_pem = certs["alice"]
    gone = request(cert_header=escaped(alice_pem))
    gone.protocol.transport = None
    assert client_certificate(gone, CERT_HEADER) == certificate_thumbprint(alice_der)
    gone = request()
    gone.protocol.transport = None
    assert client_certificate(gone, CERT_HEADER) is None
