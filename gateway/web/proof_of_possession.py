"""The proof-of-possession step after a bearer token is accepted: DPoP (RFC 9449) against
the canonical request (the client's scheme and host, the canonical path), and the client
certificate of certificate-bound tokens (RFC 8705)."""

from __future__ import annotations

from aiohttp import web

from gateway.errors import NoAuthenticator
from gateway.idp.jwks import invalid_token
from gateway.policy.routes import CompiledRoute
from gateway.tokens.bearer import authorization_scheme, one_authorization_header, parse_bearer
from gateway.tokens.certificate_binding import (
    bound_certificate,
    certificate_from_header,
    certificate_thumbprint,
    check_certificate_binding,
)
from gateway.tokens.dpop import bound_key
from gateway.types import Principal
from gateway.web.keys import TARGET, VIEW
from gateway.web.services import Services

# (method, URL without query) of the request a proof must name: the proxied request, or
# for forward-auth the original request the proxy in front asks about.
RequestTarget = tuple[str, str]


def client_certificate(request: web.Request, header: str | None) -> str | None:
    """The x5t#S256 of the client's certificate: from this connection's TLS handshake, or
    from ``header`` when a trusted proxy sends it; None without one."""
    transport = request.transport
    tls = transport.get_extra_info("ssl_object") if transport is not None else None
    der = tls.getpeercert(binary_form=True) if tls is not None else None
    if not der and header and request[VIEW].trusted_peer:
        value = request.headers.get(header)
        der = certificate_from_header(value) if value else None
    return certificate_thumbprint(der) if der else None


def canonical_target(request: web.Request) -> RequestTarget:
    view = request[VIEW]
    return request.method, f"{view.scheme}://{view.host}{request[TARGET].encoded}"


async def check_proof_of_possession(
    request: web.Request,
    services: Services,
    route: CompiledRoute,
    principal: Principal,
    target: RequestTarget | None = None,
) -> None:
    """Refuse (DpopRefused) a bound token without its proof, or any token without one on a
    route that requires DPoP."""
    bearer = services.bearer
    if bearer is None:
        raise NoAuthenticator("no bearer issuers configured")
    header = one_authorization_header(request.headers.getall("Authorization", []))
    scheme = authorization_scheme(header)
    if scheme == "bearer" and "cnf" not in principal.claims and not route.config.require_dpop:
        # An unbound token sent as Bearer where DPoP is not required (most API calls):
        # neither check below could refuse it, so skip their parsing on the hot path.
        return
    claims = principal.claims
    if "cnf" in claims and bound_key(claims) is None and bound_certificate(claims) is None:
        # RFC 7800 has other confirmation methods (jwk, jku, kid) and a cnf may be
        # malformed: a binding this gateway cannot check must not pass as a bearer token.
        raise invalid_token(
            "The access token is bound by a confirmation method this gateway cannot check."
        )
    check_certificate_binding(
        principal.claims, client_certificate(request, bearer.config.client_certificate_header)
    )
    method, url = target or canonical_target(request)
    await bearer.dpop.check(
        scheme=scheme,
        token=parse_bearer(header, dpop=True),
        claims=principal.claims,
        proofs=request.headers.getall("DPoP", []),
        method=method,
        url=url,
        required=route.config.require_dpop,
    )
