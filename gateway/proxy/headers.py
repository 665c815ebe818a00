"""Header shaping for the forwarded request and the returned response (pure functions)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from multidict import CIMultiDict, CIMultiDictProxy

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


@dataclass(frozen=True, slots=True)
class ClientView:
    """Who the client is and what it asked for, after trusting only trusted proxies."""

    peer: str
    client_ip: str
    scheme: str
    host: str
    forwarded_for: tuple[str, ...]
    trusted_peer: bool


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
        self, peer: str, headers: CIMultiDictProxy[str], scheme: str, host: str
    ) -> ClientView:
        """The effective client address, scheme and host for this request."""
        if not self.trusts(peer):
            return ClientView(peer, peer, scheme, host, (), False)
        chain = tuple(_split_csv(headers.getall("X-Forwarded-For", [])))
        # Walk right to left past our own trusted proxies: the first untrusted hop is the client.
        client = peer
        for hop in reversed(chain):
            client = hop
            if not self.trusts(hop):
                break
        proto = headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        fwd_host = headers.get("X-Forwarded-Host", "").split(",")[0].strip()
        return ClientView(
            peer=peer,
            client_ip=client,
            scheme=proto if proto in ("http", "https") else scheme,
            host=fwd_host or host,
            forwarded_for=chain,
            trusted_peer=True,
        )


def _split_csv(values: Sequence[str]) -> Iterable[str]:
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if part:
                yield part


def connection_tokens(headers: CIMultiDictProxy[str]) -> frozenset[str]:
    """Header names listed in Connection, which are hop-by-hop too (RFC 9110 7.6.1)."""
    return frozenset(t.lower() for t in _split_csv(headers.getall("Connection", [])))


def upstream_request_headers(
    incoming: CIMultiDictProxy[str],
    view: ClientView,
    *,
    drop: frozenset[str],
    upstream_host: str,
    preserve_host: bool,
    request_id: str,
) -> CIMultiDict[str]:
    """The headers sent upstream: client headers minus hop-by-hop and ``drop``, plus forwarding."""
    dropped = drop | connection_tokens(incoming)
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in incoming.items():
        if name.lower() not in dropped:
            out.add(name, value)
    out["Host"] = incoming.get("Host", upstream_host) if preserve_host else upstream_host
    out["X-Forwarded-For"] = ", ".join((*view.forwarded_for, view.peer))
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


def response_headers(upstream: CIMultiDictProxy[str]) -> CIMultiDict[str]:
    """The upstream's response headers minus hop-by-hop ones."""
    dropped = RESPONSE_DROP | connection_tokens(upstream)
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in upstream.items():
        if name.lower() not in dropped:
            out.add(name, value)
    return out
