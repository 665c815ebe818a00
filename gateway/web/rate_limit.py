"""Per-client-address token buckets for the paths a flood could turn against the IdP or Redis."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from gateway import metrics
from gateway.errors import RateLimited

MAX_CLIENTS = 100_000


class RateLimiter:
    """Allows ``per_minute`` requests per client and bucket, with bursts up to that many."""

    def __init__(
        self,
        per_minute: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        self._capacity = float(per_minute)
        self._rate = per_minute / 60.0
        self._clock = clock
        self._max = max_clients
        self._buckets: OrderedDict[tuple[str, str], tuple[float, float]] = OrderedDict()

    def check(self, client: str, bucket: str, *, public: str | None = None) -> None:
        """Spend one token for ``client`` in ``bucket``; raise RateLimited when none is left.

        ``public`` is what the client is told (default: RateLimited's message).
        """
        if not self._take(client, bucket):
            metrics.RATE_LIMITED.labels(bucket).inc()
            raise RateLimited(f"rate limit for {bucket} exceeded by {client}", public=public)

    def spend(self, client: str, bucket: str) -> None:
        """Spend one token if there is one (counting failures), never raising."""
        self._take(client, bucket)

    def exhausted(self, client: str, bucket: str) -> bool:
        """True when ``client`` has no token left in ``bucket`` (nothing is spent)."""
        tokens, last = self._buckets.get((bucket, client), (self._capacity, self._clock()))
        return min(self._capacity, tokens + (self._clock() - last) * self._rate) < 1.0

    def _take(self, client: str, bucket: str) -> bool:
        key = (bucket, client)
        now = self._clock()
        tokens, last = self._buckets.pop(key, (self._capacity, now))
        tokens = min(self._capacity, tokens + (now - last) * self._rate)
        taken = tokens >= 1.0
        self._buckets[key] = (tokens - 1.0 if taken else tokens, now)
        if len(self._buckets) > self._max:
            self._buckets.popitem(last=False)  # forget the least recently seen client
        return taken
