"""Provider profiles without a browser: config rules, issuer shapes, claim checks, and the
quirks the test OP cannot produce (it signs with its own issuer), against the scriptable
IdP of tests/login/test_provider_client.py."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from gateway.config.model import Config, Provider, TrustedIssuer
from gateway.errors import LoginError
from gateway.policy.claim_paths import read_claim, with_canonical_claims
from gateway.providers import profile_for
from gateway.providers.detect import looks_like, profile_findings
from gateway.web.rules import config_findings
from tests.login.test_provider_client import FakeIdP, complete, idp  # noqa: F401 - fixtures

TENANT = "aaaaaaaa-1111-4111-8111-aaaaaaaaaaaa"
OTHER = "bbbbbbbb-2222-4222-8222-bbbbbbbbbbbb"
MS = "https://login.microsoftonline.com"


def provider(**fields: Any) -> Provider:
    base: dict[str, Any] = {"name": "p", "issuer": "https://idp.example.com",
                            "client_id": "c", "client_secret": "s" * 32}  # fmt: skip
    return Provider(**{**base, **fields})


def entra(issuer: str = f"{MS}/organizations/v2.0", tenants: list[str] | None = None) -> Any:
    return profile_for(provider(issuer=issuer, profile="entra",
                                entra={"tenants": tenants or [TENANT]}))  # fmt: skip


def test_entra_needs_an_explicit_tenant_list() -> None:
    """profile entra without entra.tenants, with an empty list, or with a non-GUID
    (e.g. 'common') is a config error: no tenant is ever let in by default."""
    bads: list[dict[str, Any]] = [
        {},
        {"entra": {"tenants": []}},
        {"entra": {"tenants": ["common"]}},
    ]
    for bad in bads:
        with pytest.raises(ValidationError, match="tenant"):
            provider(issuer=f"{MS}/organizations/v2.0", profile="entra", **bad)
    with pytest.raises(ValidationError, match="profile is generic"):
        provider(entra={"tenants": [TENANT]})


def test_entra_issuer_templates_v2_v1_and_single_tenant() -> None:
    """The multi-tenant documents' {tenantid} issuers (v2.0 and v1's sts.windows.net) match
    the configured /organizations or /common issuer; only the listed tenants' issuers are
    accepted in tokens; a single-tenant issuer is matched exactly, never as a template."""
    v2 = entra()
    assert v2.discovery_issuer_matches(f"{MS}/{{tenantid}}/v2.0")
    assert not v2.discovery_issuer_matches("https://evil.example/{tenantid}/v2.0")
    assert v2.id_token_issuers(f"{MS}/{{tenantid}}/v2.0") == [f"{MS}/{TENANT}/v2.0"]
    v1 = entra(f"{MS}/common")
    assert v1.discovery_issuer_matches("https://sts.windows.net/{tenantid}/")
    assert v1.id_token_issuers("https://sts.windows.net/{tenantid}/") == [
        f"https://sts.windows.net/{TENANT}/"
    ]
    single = entra(f"{MS}/{TENANT}/v2.0")
    assert single.discovery_issuer_matches(f"{MS}/{TENANT}/v2.0")
    assert not single.discovery_issuer_matches(f"{MS}/{{tenantid}}/v2.0")


def test_entra_tid_must_be_listed_and_named_by_iss() -> None:
    """A tid outside entra.tenants, a missing tid, or an iss naming another tenant than
    tid: each refuses the login."""
    profile = entra(tenants=[TENANT])
    profile.check_identity({"tid": TENANT, "iss": f"{MS}/{TENANT}/v2.0"})
    for claims in ({"tid": OTHER, "iss": f"{MS}/{OTHER}/v2.0"}, {"iss": f"{MS}/{TENANT}/v2.0"},
                   {"tid": TENANT, "iss": f"{MS}/{OTHER}/v2.0"}):  # fmt: skip
        with pytest.raises(LoginError):
            profile.check_identity(claims)


def test_entra_email_fallback_order() -> None:
    """Without `email`, preferred_username then upn become the e-mail (when they are one)."""
    profile = entra()
    assert profile.canonical_claims({"preferred_username": "a@x.example", "upn": "b@x.example"})[
        "email"] == "a@x.example"  # fmt: skip
    assert profile.canonical_claims({"preferred_username": "alice", "upn": "b@x.example"})[
        "email"] == "b@x.example"  # fmt: skip
    assert profile.canonical_claims({"email": "e@x.example", "upn": "b@x.example"})[
        "email"] == "e@x.example"  # fmt: skip


def test_claim_paths_dotted_pointer_and_namespaced() -> None:
    """Dotted paths, JSON Pointers (with ~1 for '/') and namespaced URL claims all read;
    a configured groups path that is absent yields no groups, never the token's own."""
    claims = {"realm_access": {"roles": ["a"]}, "resource_access": {"my.app": {"roles": ["b"]}},
              "https://example.com/roles": ["c"], "groups": ["forged"]}  # fmt: skip
    assert read_claim(claims, "realm_access.roles") == ["a"]
    assert read_claim(claims, "/resource_access/my.app/roles") == ["b"]
    assert read_claim(claims, "https://example.com/roles") == ["c"]
    assert read_claim({"a/b": {"c": 1}}, "/a~1b/c") == 1
    canonical = with_canonical_claims(claims, {"groups": "missing.path", "roles": "roles"})
    assert canonical["groups"] == []


async def test_google_scheme_less_issuer_accepted_only_by_the_profile(
    idp: FakeIdP,  # noqa: F811 - fixture
    complete: Any,  # noqa: F811 - fixture
) -> None:
    """An id_token whose iss is the issuer without its scheme (Google's accounts.google.com)
    passes under profile google and is refused by the generic, exact check."""
    idp.claims = {"iss": idp.issuer.split("://", 1)[1]}
    _, claims = await complete(profile="google")
    assert claims["sub"] == "user-1"
    with pytest.raises(LoginError):
        await complete()


async def test_google_hd_only_from_the_signed_id_token(
    idp: FakeIdP,  # noqa: F811 - fixture
    complete: Any,  # noqa: F811 - fixture
) -> None:
    """A personal account (no hd in the id_token) stays refused when hd arrives in userinfo
    or the token response instead; a forged hd in the id_token is refused; the right one passes."""
    settings = {"profile": "google", "google": {"hosted_domains": ["corp.example"]}}
    idp.userinfo = {"hd": "corp.example"}
    idp.token_extra = {"hd": "corp.example"}
    with pytest.raises(LoginError, match="hd"):
        await complete(**settings)
    idp.claims = {"hd": "other.example"}
    with pytest.raises(LoginError, match="hd"):
        await complete(**settings)
    idp.claims = {"hd": "corp.example"}
    _, claims = await complete(**settings)
    assert claims["hd"] == "corp.example"


def test_okta_org_server_must_introspect_every_token() -> None:
    """A trusted Okta org-server issuer without introspection mode all is a config error;
    a custom server (/oauth2/<id>) may validate locally."""
    base = {"audiences": ["api"]}
    with pytest.raises(ValidationError, match="org authorization server"):
        TrustedIssuer(issuer="https://acme.okta.com", profile="okta", **base)
    TrustedIssuer(issuer="https://acme.okta.com/oauth2/default", profile="okta", **base)
    introspection = {"client_id": "rs", "client_secret": "x", "mode": "all"}
    TrustedIssuer(issuer="https://acme.okta.com", profile="okta", introspection=introspection,
                  **base)  # fmt: skip


def test_github_needs_the_explicit_opt_in() -> None:
    """profile github without github.identity_from_api: true is a config error; with it,
    GitHub's endpoints and scopes are filled in and discovery is off."""
    # No issuer: the github profile fills it in.
    github = {"name": "gh", "client_id": "c", "client_secret": "s" * 32, "profile": "github"}
    with pytest.raises(ValidationError, match="identity_from_api"):
        Provider.model_validate(github)
    with pytest.raises(ValidationError):
        Provider.model_validate({**github, "github": {"identity_from_api": False}})
    gh = Provider.model_validate({**github, "github": {"identity_from_api": True}})
    assert not gh.discovery
    assert gh.endpoints.token == "https://github.com/login/oauth/access_token"
    assert "openid" not in gh.scopes


@pytest.mark.parametrize(("issuer", "expected"), [
    (f"{MS}/organizations/v2.0", "entra"), ("https://accounts.google.com", "google"),
    ("https://acme.okta.com/oauth2/default", "okta"), ("https://acme.eu.auth0.com/", "auth0"),
    ("https://sso.example.com/realms/staff", "keycloak"), ("https://idp.example.com", None),
])  # fmt: skip
def test_lookalike_issuers_are_recognised(issuer: str, expected: str | None) -> None:
    """`gateway check` recognises the issuers of the known providers, and nothing else."""
    assert looks_like(issuer) == expected


def test_check_names_the_profile_and_warns_on_a_missing_one() -> None:
    """`gateway check` says which profile each provider gets, and warns when an Entra-looking
    issuer runs with the generic profile."""
    config = Config(routes=[{"path": "/", "upstream": "http://127.0.0.1:1"}], providers=[
        {"name": "ms", "issuer": f"{MS}/{TENANT}/v2.0", "client_id": "c",
         "client_secret": "s" * 32},
        {"name": "kc", "issuer": "https://sso.example.com/realms/staff", "client_id": "c",
         "client_secret": "s" * 32, "profile": "keycloak"},
    ])  # fmt: skip
    messages = [(f.level, f.subject, f.message) for f in config_findings(config)]
    assert ("ok", "providers[0]", "profile generic applied") in messages
    assert ("ok", "providers[1]", "profile keycloak applied") in messages
    assert any(lvl == "warn" and s == "providers[0]" and "profile: entra" in m
               for lvl, s, m in messages)  # fmt: skip
    assert profile_findings("https://sso.example.com/realms/x", "keycloak")[1] == []
