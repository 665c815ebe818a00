"""`gateway check` findings on PAR, response modes, DPoP and mTLS-bound tokens: what the
provider supports, and whether the configuration asks for something it does not."""

from __future__ import annotations

from gateway.config.model import Provider
from gateway.idp.check import CheckResult, error, ok
from gateway.idp.discovery import ProviderMetadata

PAR_ENDPOINT = "pushed_authorization_request_endpoint"


def par_findings(provider: Provider, metadata: ProviderMetadata) -> list[CheckResult]:
    raw = metadata.raw
    has_par = isinstance(raw.get(PAR_ENDPOINT), str) and bool(raw.get(PAR_ENDPOINT))
    required = raw.get("require_pushed_authorization_requests") is True
    wanted = provider.pushed_authorization or required
    if wanted and not has_par:
        why = "required by the provider" if required else "configured"
        return [error(f"pushed authorization requests are {why} but the provider advertises "
                      f"no {PAR_ENDPOINT}: logins will fail.")]  # fmt: skip
    if wanted:
        return [ok("pushed authorization requests (RFC 9126) will be used.")]
    if has_par:
        offered = "the provider offers pushed authorization requests (RFC 9126); set "
        return [ok(offered + "pushed_authorization: true to keep the request off the URL.")]
    return []


def modern_findings(provider: Provider, metadata: ProviderMetadata) -> list[CheckResult]:
    """One finding per feature: used, offered, or asked for but missing."""
    raw = metadata.raw
    results = par_findings(provider, metadata)
    modes = raw.get("response_modes_supported")
    if provider.response_mode == "form_post":
        if isinstance(modes, list) and "form_post" not in modes:
            results.append(error("response_mode form_post is configured, but the provider's "
                                 "response_modes_supported does not list it."))  # fmt: skip
        else:
            results.append(ok("authorization responses come by form_post."))
    dpop_algs = raw.get("dpop_signing_alg_values_supported")
    if isinstance(dpop_algs, list) and dpop_algs:
        algs = ", ".join(str(a) for a in dpop_algs[:8])
        results.append(ok(f"the provider issues DPoP-bound tokens (RFC 9449), proofs: {algs}."))
    if raw.get("tls_client_certificate_bound_access_tokens") is True:
        results.append(ok("the provider binds tokens to client certificates (RFC 8705)."))
    return results
