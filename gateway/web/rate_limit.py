"""Per-client-address token buckets for the paths a flood could turn against the IdP or Redis."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

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

    def check(self, client: str, bucket: str) -> None:
        """Spend one token for ``client`` in ``bucket``; raise RateLimited when none is left."""
        key = (bucket, client)
        now = self._clock()
        tokens, last = self._buckets.pop(key, (self._capacity, now))
        tokens = min(self._capacity, tokens + (now - last) * self._rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            raise RateLimited(f"rate limit for {bucket} exceeded by {client}")
        self._buckets[key] = (tokens - 1.0, now)
        if len(self._buckets) > self._max:
            self._buckets.popitem(last=False)  # forget the least recently seen client
