"""Header shaping for the forwarded request and the returned response (pure functions)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from multidict import CIMultiDict, CIMultiDictProxy

from gateway.errors import BadRequest
from gateway.policy.canonical import canonical_host

# RFC 9110 7.6.1: connection-specific fields never travel past one hop.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# Recomputed by the gateway, never copied from the client.
FORWARDING = frozenset({"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded"})
# The client's Host is replaced by the upstream's unless the route preserves it.
REQUEST_DROP = HOP_BY_HOP | FORWARDING | {"host", "content-length", "x-request-id"}
RESPONSE_DROP = HOP_BY_HOP | {"content-length"}
NO_TOKENS: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class ClientView:
    """Who the client is and what it asked for, after trusting only trusted proxies."""

    peer: str
    client_ip: str
    scheme: str
    host: str
    forwarded_for: tuple[str, ...]
    trusted_peer: bool

    @property
    def origin(self) -> str:
        return f"{self.scheme}://{self.host}"


class TrustedProxies:
    """The set of peers whose X-Forwarded-* and Forwarded headers are believed."""

    def __init__(self, networks: Iterable[str]) -> None:
        self._nets = [ipaddress.ip_network(n, strict=False) for n in networks]

    def trusts(self, address: str) -> bool:
        if not self._nets:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self._nets)

    def client_view(
        self,
        peer: str,
        headers: CIMultiDictProxy[str],
        scheme: str,
        authority: str | None,
        default_host: str | None = None,
    ) -> ClientView:
        """The effective client address, scheme and canonical host for this request.

        ``authority`` is the request line's host[:port] when the target was absolute-form:
        it must name the same host as the Host header, or the request is refused (a proxy
        routing by one and an upstream serving by the other would disagree).
        """
        host = _request_host(headers, scheme, authority, default_host)
        if not self.trusts(peer):
            return ClientView(peer, peer, scheme, host, (), False)
        chain = tuple(_split_csv(headers.getall("X-Forwarded-For", [])))
        # Walk right to left past our own trusted proxies: the first untrusted hop is the client.
        client = peer
        for hop in reversed(chain):
            client = hop
            if not self.trusts(hop):
                break
        # A proxy appends its own value: the rightmost one is what our trusted proxy saw.
        proto = _last(headers.getall("X-Forwarded-Proto", [])).lower()
        fwd_host = _last(headers.getall("X-Forwarded-Host", []))
        return ClientView(
            peer=peer,
            client_ip=client,
            scheme=proto if proto in ("http", "https") else scheme,
            host=canonical_host(fwd_host) if fwd_host else host,
            forwarded_for=chain,
            trusted_peer=True,
        )


def _last(values: Sequence[str]) -> str:
    parts = list(_split_csv(values))
    return parts[-1] if parts else ""


def _without_default_port(host: str, scheme: str) -> str:
    default = ":443" if scheme == "https" else ":80"
    return host[: -len(default)] if host.endswith(default) else host


def _request_host(
    headers: CIMultiDictProxy[str], scheme: str, authority: str | None, default: str | None
) -> str:
    """The one canonical Host: exactly one header, agreeing with an absolute-form target.

    ``default`` stands in for a missing header only where HTTP allows one to be missing
    (HTTP/1.0 health checks such as HAProxy's `option httpchk`).
    """
    values = headers.getall("Host", []) or ([default] if default else [])
    if len(values) != 1:
        raise BadRequest(
            f"{len(values)} Host headers", public="Exactly one Host header is required."
        )
    host = canonical_host(values[0])
    if authority is not None:
        target = canonical_host(authority)
        if _without_default_port(target, scheme) != _without_default_port(host, scheme):
            raise BadRequest(
                f"request target host {authority[:100]!r} differs from Host {values[0][:100]!r}",
                public="The request target and the Host header name different hosts.",
            )
    return host


def _split_csv(values: Sequence[str]) -> Iterable[str]:
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if part:
                yield part


def connection_tokens(headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> frozenset[str]:
    """Header names listed in Connection, which are hop-by-hop too (RFC 9110 7.6.1)."""
    values = headers.getall("Connection", ())
    if not values:
        return NO_TOKENS  # the usual case, on every request and response
    return frozenset(t.lower() for t in _split_csv(values))


def upstream_request_headers(
    incoming: CIMultiDictProxy[str],
    view: ClientView,
    *,
    drop: frozenset[str],
    owned: Callable[[str], bool],
    upstream_host: str,
    preserve_host: bool,
    request_id: str,
) -> CIMultiDict[str]:
    """The headers sent upstream: client headers minus hop-by-hop, ``drop`` and ``owned``
    ones (whatever their spelling), plus the gateway's own forwarding headers."""
    dropped = drop | connection_tokens(incoming)
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in incoming.items():
        if name.lower() not in dropped and not owned(name):
            out.add(name, value)
    # The canonical host: the one the route was chosen by, never a second reading.
    out["Host"] = view.host if preserve_host else upstream_host
    out["X-Forwarded-For"] = ", ".join((*view.forwarded_for, view.peer))
    out["X-Real-IP"] = view.client_ip
    out["X-Forwarded-Proto"] = view.scheme
    out["X-Forwarded-Host"] = view.host
    out["Forwarded"] = _forwarded(incoming, view)
    out["X-Request-ID"] = request_id
    return out


def _forwarded(incoming: CIMultiDictProxy[str], view: ClientView) -> str:
    element = f'for={_node(view.peer)};proto={view.scheme};host="{_quote(view.host)}"'
    previous = ", ".join(incoming.getall("Forwarded", [])) if view.trusted_peer else ""
    return f"{previous}, {element}" if previous else element


def _node(address: str) -> str:
    # RFC 7239 6: IPv6 addresses are bracketed and the value quoted.
    return f'"[{address}]"' if ":" in address else address


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def response_headers(upstream: CIMultiDict[str]) -> CIMultiDict[str]:
    """The upstream's response headers minus hop-by-hop ones."""
    tokens = connection_tokens(upstream)
    out = upstream.copy()  # in C, as are the removals: this runs on every response
    for name in RESPONSE_DROP | tokens if tokens else RESPONSE_DROP:
        out.popall(name, None)
    return out
