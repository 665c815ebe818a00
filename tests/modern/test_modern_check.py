"""`gateway check` says which modern features a provider supports and flags configs that
ask for what it lacks."""

from __future__ import annotations

from typing import Any

from gateway.config.model import Provider
from gateway.idp.discovery import ProviderMetadata
from gateway.idp.modern_check import modern_findings


def provider(**extra: Any) -> Provider:
    return Provider(
        name="op", issuer="https://op.example", client_id="gw", client_secret="s" * 32, **extra
    )


def test_reports_what_the_provider_supports() -> None:
    """A provider advertising PAR, DPoP and mTLS binding is reported as offering each."""
    meta = ProviderMetadata(
        issuer="https://op.example",
        raw={
            "pushed_authorization_request_endpoint": "https://op.example/par",
            "dpop_signing_alg_values_supported": ["ES256"],
            "tls_client_certificate_bound_access_tokens": True,
        },
    )
    found = [(r.level, r.message) for r in modern_findings(provider(), meta)]
    assert all(level == "ok" for level, _ in found)
    text = " ".join(message for _, message in found)
    assert "offers pushed authorization requests" in text
    assert "DPoP" in text
    assert "client certificates" in text


def test_flags_features_asked_for_but_missing() -> None:
    """PAR or form_post configured against a provider without them is an error."""
    meta = ProviderMetadata(
        issuer="https://op.example", raw={"response_modes_supported": ["query"]}
    )
    found = modern_findings(provider(pushed_authorization=True, response_mode="form_post"), meta)
    assert [r.level for r in found] == ["error", "error"]
