"""Which profile an issuer URL looks like (for `gateway check`'s warning)."""

from __future__ import annotations

from urllib.parse import urlsplit

_HOSTS = (
    ("login.microsoftonline.com", "entra"),
    ("sts.windows.net", "entra"),
    ("accounts.google.com", "google"),
    ("github.com", "github"),
)
_HOST_SUFFIXES = ((".okta.com", "okta"), (".oktapreview.com", "okta"), (".auth0.com", "auth0"))


def looks_like(issuer: str) -> str | None:
    """The profile whose IdP usually has this issuer, or None when it looks like no known one."""
    parts = urlsplit(issuer if "//" in issuer else "https://" + issuer)
    host = (parts.hostname or "").lower()
    for known, profile in _HOSTS:
        if host == known:
            return profile
    for suffix, profile in _HOST_SUFFIXES:
        if host.endswith(suffix):
            return profile
    if "/realms/" in parts.path + "/":
        return "keycloak"
    return None


def profile_findings(issuer: str, profile: str) -> tuple[str, list[str]]:
    """The sentence naming the applied profile, and warnings about a likely missing one."""
    applied = f"profile {profile} applied"
    guess = looks_like(issuer)
    if profile == "generic" and guess is not None:
        return applied, [
            f"the issuer looks like {guess}, but no profile is set: add `profile: {guess}` "
            f"(see docs/providers/{guess}.md), or its quirks will break sign-in"
        ]
    return applied, []
