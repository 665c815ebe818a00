"""The route table: pick the route for a host and path, compiled once from config.

Host first (exact, then the longest wildcard suffix, then routes without a host),
then the longest path prefix among that host's routes — the way nginx picks a
server and then a location.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from gateway.config.model import Route


@dataclass(frozen=True, slots=True)
class CompiledRoute:
    """A route with what the hot path needs precomputed."""

    index: int
    name: str
    prefix: str
    config: Route

    def matches_path(self, path: str) -> bool:
        if self.prefix == "/" or path == self.prefix or path == self.prefix.rstrip("/"):
            return True
        if self.prefix.endswith("/"):
            return path.startswith(self.prefix)
        return path.startswith(self.prefix + "/")

    def upstream_path(self, path: str) -> str:
        """The path sent upstream: the request path, minus the prefix when asked."""
        if not self.config.strip_prefix or self.prefix == "/":
            return path
        rest = path[len(self.prefix.rstrip("/")) :]
        return rest if rest.startswith("/") else "/" + rest


class RouteTable:
    """Routes grouped by host kind, each group sorted by descending prefix length."""

    def __init__(self, routes: Sequence[Route]) -> None:
        self._exact: dict[str, list[CompiledRoute]] = {}
        self._wildcard: dict[str, list[CompiledRoute]] = {}
        self._any: list[CompiledRoute] = []
        for i, route in enumerate(routes):
            compiled = CompiledRoute(i, route.name or f"route{i}", route.path, route)
            if route.host is None:
                self._any.append(compiled)
            elif route.host.startswith("*."):
                self._wildcard.setdefault(route.host[1:], []).append(compiled)
            else:
                self._exact.setdefault(route.host, []).append(compiled)
        for group in (*self._exact.values(), *self._wildcard.values(), self._any):
            group.sort(key=lambda r: len(r.prefix), reverse=True)
        # Longer suffixes are more specific: *.a.example.com before *.example.com.
        self._suffixes = sorted(self._wildcard, key=len, reverse=True)

    def match(self, host: str, path: str) -> CompiledRoute | None:
        """The route for ``host`` (no port, any case) and ``path``, or None."""
        host = host.lower().rstrip(".")
        path = routing_path(path)
        for group in self._candidates(host):
            for route in group:
                if route.matches_path(path):
                    return route
        return None

    def _candidates(self, host: str) -> list[list[CompiledRoute]]:
        groups: list[list[CompiledRoute]] = []
        if host in self._exact:
            groups.append(self._exact[host])
        groups.extend(
            self._wildcard[s] for s in self._suffixes if host.endswith(s) and len(host) > len(s)
        )
        groups.append(self._any)
        return groups

    def __iter__(self) -> Iterator[CompiledRoute]:
        """Every route, in config order."""
        groups = [self._any, *self._exact.values(), *self._wildcard.values()]
        yield from sorted((r for g in groups for r in g), key=lambda r: r.index)


_PARAMS = re.compile(r";[^/]*")
_SLASHES = re.compile(r"/{2,}")


def path_problem(path: str) -> str | None:
    """Why a decoded path is refused, or None.

    A dot segment or a backslash could make a prefix match one route while the upstream
    resolves the path to another; NUL ends strings early in some upstreams.
    """
    segments = path.split("/")
    if ".." in segments or "." in segments:
        return "dot segments"
    if "\\" in path or "\x00" in path:
        return "a backslash or NUL"
    return None


def routing_path(path: str) -> str:
    """The path as the most lenient upstream reads it: ';params' dropped, '//' collapsed.

    Matching must never pick a laxer route than the one the upstream will serve: nginx
    merges slashes and Tomcat / Spring ignore ';' path parameters, so '//admin' and
    '/admin;x=1' must match the route of '/admin'. The upstream still gets the raw path.
    """
    if ";" in path:
        path = _PARAMS.sub("", path)
    if "//" in path:
        path = _SLASHES.sub("/", path)
    return path


def split_host(host_header: str) -> str:
    """The host part of a Host header value, without port or IPv6 brackets."""
    host = host_header.strip()
    if host.startswith("["):
        end = host.find("]")
        return host[1:end] if end > 0 else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host
