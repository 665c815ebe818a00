"""Identity headers for the upstream: strip what clients sent, build what the gateway vouches for.

Encoding of claim values (so no claim can inject a header or break a parser):
- strings are sent as they are, except that every character outside printable ASCII
  (controls such as CR/LF/TAB, DEL, non-ASCII) and '%' itself are percent-encoded as
  UTF-8 bytes (RFC 3986 style): `urllib.parse.unquote` gives back the exact claim;
- lists are joined by ',' with each item encoded as above and its own ',' as %2C;
- other JSON values (numbers, booleans, objects) are sent as compact JSON, then encoded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from multidict import CIMultiDict

from gateway.config.model import IdentityHeaders
from gateway.errors import ConfigError
from gateway.policy.authz import claim_value
from gateway.policy.claim_paths import MISSING
from gateway.types import Principal

HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
FORBIDDEN_NAMES = frozenset(
    {
        "authorization", "connection", "content-length", "content-type", "cookie", "host",
        "keep-alive", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade",
    }
)  # fmt: skip


# Client headers the gateway owns on every route, whatever the route's own identity headers:
# what other gateways and frameworks use to carry identity (oauth2-proxy's X-Forwarded-*,
# Apache's Remote-User), client address (IP allow-lists behind the gateway), and method or
# URL overrides (Express method-override, Symfony, IIS URL rewrite) that would let a
# request the gateway allowed become another one upstream.
OWNED_NAMES = frozenset(
    {
        "remote-user", "x-remote-user", "x-real-ip", "true-client-ip",
        "x-client-ip", "client-ip", "x-cluster-client-ip", "cf-connecting-ip",
        "fastly-client-ip", "x-proxyuser-ip", "x-original-url", "x-rewrite-url",
        "x-original-uri", "x-original-method", "x-original-host", "x-http-method-override",
        "x-http-method", "x-method-override", "front-end-https", "x-url-scheme",
        "x-host", "x-scheme", "x-forwarded", "forwarded-for", "x-original-forwarded-for",
        "x-azure-clientip", "x-azure-socketip", "x-appengine-user-ip", "x-original-remote-addr",
        "x-original-path", "x-request-uri", "x-override-url", "x-authenticated-user",
        "x-authenticated-userid",
        # httpoxy: CGI and WSGI turn `Proxy` into HTTP_PROXY, which HTTP clients obey.
        "proxy",
    }
)  # fmt: skip
# Every X-Forwarded-* is the gateway's (it writes -For, -Proto and -Host itself); the rest
# are identity and address headers of other proxies and platforms (Apache Remote-*,
# Envoy, Google IAP, AWS ALB, Azure App Service) that an upstream may have been told to trust.
OWNED_PREFIXES = (
    "x-forwarded-", "remote-", "x-remote-", "x-envoy-", "x-goog-authenticated-", "x-goog-iap-",
    "x-amzn-oidc-", "x-ms-client-principal", "x-ms-token-", "x-webauth-",
)  # fmt: skip


def comparable_name(name: str) -> str:
    """A header name as upstreams may read it: trimmed, lower case, '_' taken as '-'."""
    return name.strip().lower().replace("_", "-")


_PLAIN = re.compile(r"[!-$&-~](?:[ -$&-~]*[!-$&-~])?")  # nothing to encode, no edge spaces


def percent_encode(text: str, also: str = "") -> str:
    """Printable ASCII kept; controls, non-ASCII, '%', `also` and edge spaces become %XX.

    Leading and trailing spaces are encoded because HTTP parsers drop them: a user named
    " admin " would otherwise reach the upstream as "admin".
    """
    if _PLAIN.fullmatch(text) and not any(ch in text for ch in also):
        return text  # the common case, on every request: skip the per-character walk
    core = text.strip(" ")
    lead = len(text) - len(text.lstrip(" "))
    trail = len(text) - lead - len(core)
    return (
        "%20" * lead
        + "".join(
            ch
            if " " <= ch <= "~" and ch != "%" and ch not in also
            else "".join(f"%{byte:02X}" for byte in ch.encode("utf-8", "surrogatepass"))
            for ch in core
        )
        + "%20" * trail
    )


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def encode_claim(value: Any) -> str | None:
    """The header value for a claim, or None when there is nothing to send."""
    if value is None:
        return None
    if isinstance(value, str):
        return percent_encode(value)
    if isinstance(value, list | tuple):
        items = [item if isinstance(item, str) else _json_text(item) for item in value]
        return ",".join(percent_encode(item, also=",") for item in items) if items else None
    return percent_encode(_json_text(value))


def principal_value(principal: Principal, claim: str) -> Any:
    """A claim of the principal, falling back to its own fields (sub, iss, client_id, scope)."""
    value = claim_value(principal.claims, claim)
    if value is not None and value is not MISSING:
        return value
    fallbacks: dict[str, Any] = {
        "sub": principal.subject,
        "iss": principal.issuer,
        "client_id": principal.client_id,
        "scope": " ".join(sorted(principal.scopes)) or None,
        "scopes": " ".join(sorted(principal.scopes)) or None,
    }
    return fallbacks.get(claim)


def _checked_names(names: Iterable[str]) -> list[str]:
    problems = [
        f"identity header {name!r} is not a valid header name"
        if not HEADER_NAME.fullmatch(name)
        else f"identity header {name!r} would overwrite a header the gateway controls"
        for name in names
        if not HEADER_NAME.fullmatch(name) or name.lower() in FORBIDDEN_NAMES
    ]
    if problems:
        raise ConfigError(problems)
    return list(names)


# Callers whose identity headers are kept ready, per route.
MAX_BUILT = 10_000
BuiltKey = tuple[str, str, "str | None", frozenset[str]]


class IdentityHeaderInjector:
    """Compiled once per route from `identity` (and the route's own mapping, if any).

    ``owned`` names further headers only the gateway sets on this route (its identity
    token, the id_token): clients' copies are stripped like identity headers.
    """

    def __init__(
        self,
        config: IdentityHeaders,
        route_headers: Mapping[str, str] | None = None,
        owned: Iterable[str] = (),
    ) -> None:
        mapping = dict(route_headers) if route_headers is not None else dict(config.headers)
        _checked_names(mapping)
        self._mapping = list(mapping.items())
        self._names = frozenset(comparable_name(n) for n in [*config.headers, *mapping, *owned])
        self._prefixes = tuple(
            comparable_name(p) for p in config.strip_prefixes if comparable_name(p)
        )
        # (iss, sub, client_id, scopes) -> (the claims they were built from, the headers)
        self._built: dict[BuiltKey, tuple[dict[str, Any], tuple[tuple[str, str], ...]]] = {}

    def is_identity_header(self, name: str) -> bool:
        """True for a configured identity name or prefix, whatever the case or '_' / '-'."""
        name = comparable_name(name)
        return name in self._names or name.startswith(self._prefixes)

    def strip(self, headers: Mapping[str, str] | Iterable[str]) -> list[str]:
        """Names (as the client spelled them) of the client headers to drop."""
        names = [n for n, _ in headers.items()] if isinstance(headers, Mapping) else headers
        seen: dict[str, None] = {}  # items(), not keys(): a multidict's keys() folds case
        for name in names:
            if self.is_identity_header(name):
                seen.setdefault(str(name), None)
        return list(seen)

    def build(self, principal: Principal) -> list[tuple[str, str]]:
        """The identity headers for this principal; claims it lacks are left out.

        Built once per caller: a repeat with equal claims (a dict comparison in C) reuses
        them. A copy is returned, so a caller cannot change the cached list.
        """
        key = (principal.issuer, principal.subject, principal.client_id, principal.scopes)
        cached = self._built.get(key)
        if cached is not None and cached[0] == principal.claims:
            return list(cached[1])
        built: list[tuple[str, str]] = []
        for header, claim in self._mapping:
            value = encode_claim(principal_value(principal, claim))
            if value is not None:
                built.append((header, value))
        if len(self._built) >= MAX_BUILT:
            self._built.clear()  # bounded; refilled by the callers that are active now
        self._built[key] = (dict(principal.claims), tuple(built))
        return built


class OwnedHeaders:
    """Client headers no route may pass on: every route's identity headers and the defaults.

    One set for the whole gateway, because a header one route vouches for (X-Api-User)
    reaches the same upstream through every other route too.
    """

    def __init__(self, names: Iterable[str], prefixes: Iterable[str]) -> None:
        self._names = frozenset(comparable_name(n) for n in names) | OWNED_NAMES
        self._prefixes = (*{comparable_name(p) for p in prefixes if comparable_name(p)},
                          *OWNED_PREFIXES)  # fmt: skip

    def owns(self, name: str) -> bool:
        """True for an owned name or prefix, whatever the case, '_' or '-', or edge spaces."""
        name = comparable_name(name)
        return name in self._names or name.startswith(self._prefixes)

    def strip(self, headers: CIMultiDict[str]) -> None:
        """Remove every owned header the client sent, in every spelling."""
        owned = {name for name in headers.keys() if self.owns(name)}  # noqa: SIM118
        for name in owned:
            headers.popall(name, None)
