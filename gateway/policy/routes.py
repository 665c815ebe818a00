"""The route table: pick the route for a host and path, compiled once from config.

Host first (exact, then the longest wildcard suffix, then routes without a host),
then the longest path prefix among that host's routes — the way nginx picks a
server and then a location. Paths are canonical (gateway.policy.canonical).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from gateway.config.model import Policy, Route
from gateway.policy.canonical import CanonicalPath, PathRefused


@dataclass(frozen=True, slots=True)
class CompiledRoute:
    """A route with what the hot path needs precomputed."""

    index: int
    name: str
    prefix: str
    config: Route
    # No requirement beyond the route's auth: every caller it lets in is allowed.
    open_policy: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "open_policy", self.config.policy == Policy())

    def matches_path(self, path: str) -> bool:
        if self.prefix == "/" or path == self.prefix or path == self.prefix.rstrip("/"):
            return True
        if self.prefix.endswith("/"):
            return path.startswith(self.prefix)
        return path.startswith(self.prefix + "/")

    @property
    def unrestricted(self) -> bool:
        """Public with no policy: reaching it under another reading gains nothing."""
        return self.config.auth == "public" and self.open_policy

    def paths_below(self, path: CanonicalPath) -> tuple[str, ...]:
        """The path below the prefix, for the decoded path and each other reading an
        upstream may act on (policy path conditions must hold for all of them)."""
        base = self.prefix.rstrip("/").lower()
        below: list[str] = []
        for reading in (path.decoded, *path.readings_for(self.config.case_sensitive)):
            folded = reading.lower()
            # a case-folded reading is below the prefix too when only the case differs
            inside = folded == base or folded.startswith(base + "/")
            rest = reading[len(base) :] if inside else reading
            rest = rest if rest.startswith("/") else "/" + rest
            if rest not in below:
                below.append(rest)
        return tuple(below)

    def upstream_path(self, path: CanonicalPath) -> str:
        """The encoded path sent upstream: the canonical path, minus the prefix when asked."""
        if not self.config.strip_prefix or self.prefix == "/":
            return path.encoded
        # Cut whole segments: as many as the prefix has, counted in the canonical path.
        depth = self.prefix.rstrip("/").count("/")
        rest = "/".join(path.encoded.split("/")[depth + 1 :])
        return "/" + rest


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

    def resolve(self, host: str, path: CanonicalPath) -> CompiledRoute | None:
        """The route for a canonical target; PathRefused if another reading is stricter.

        An upstream that folds case, trims dots or decodes twice serves the resource of
        another reading: if that reading belongs to a route with checks of its own, the
        target is ambiguous and refused rather than let through the laxer route.
        """
        route = self.match(host, path.decoded)
        if route is None:
            return None
        for reading in path.readings_for(route.config.case_sensitive):
            other = self.match(host, reading)
            if other is not None and other is not route and not other.unrestricted:
                raise PathRefused(
                    f"path {path.decoded[:200]!r} reads as {reading[:200]!r} upstream, which "
                    f"is route {other.name}, not {route.name}"
                )
        return route

    def match(self, host: str, path: str) -> CompiledRoute | None:
        """The route for ``host`` (no port, any case) and a decoded ``path``, or None."""
        host = host.lower().rstrip(".")
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


def split_host(host_header: str) -> str:
    """The host part of a Host header value, without port or IPv6 brackets."""
    host = host_header.strip()
    if host.startswith("["):
        end = host.find("]")
        return host[1:end] if end > 0 else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host
