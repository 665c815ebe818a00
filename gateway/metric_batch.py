"""Per-request counts added to prometheus_client in batches, once per event-loop turn.

With several workers every inc()/observe() of prometheus_client takes a lock and writes
the new value into an mmap'ed file; a proxied request made six of them. Here they are
summed in plain dicts and handed over on the loop's next turn (or before a scrape), so a
scrape never misses a request that was answered before it.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from typing import Any


class LoopBatch:
    """Pending counter increments and histogram observations, keyed by labelled child."""

    __slots__ = ("_counts", "_histograms", "_pending_on")

    def __init__(self) -> None:
        self._counts: dict[Any, float] = {}
        # child -> [sum of observations, count per bucket (the child's upper bounds)...]
        self._histograms: dict[Any, list[float]] = {}
        # The loop a flush is scheduled on; a loop closed before running it needs another.
        self._pending_on: asyncio.AbstractEventLoop | None = None

    def inc(self, child: Any) -> None:
        """Count one for a Counter child."""
        self._counts[child] = self._counts.get(child, 0.0) + 1.0
        if self._pending_on is None or self._pending_on.is_closed():
            self._schedule()

    def observe(self, child: Any, value: float) -> None:
        """Observe ``value`` on a Histogram child."""
        entry = self._histograms.get(child)
        if entry is None:
            if not _has_buckets(child):
                child.observe(value)  # a prometheus_client without the attributes used below
                return
            entry = self._histograms[child] = [0.0] * (1 + len(child._upper_bounds))
        entry[0] += value
        # The first bucket whose upper bound is >= value: prometheus_client's own choice.
        entry[1 + bisect_left(child._upper_bounds, value)] += 1
        if self._pending_on is None or self._pending_on.is_closed():
            self._schedule()

    def flush(self) -> None:
        """Hand everything pending to prometheus_client."""
        self._pending_on = None
        counts, self._counts = self._counts, {}
        histograms, self._histograms = self._histograms, {}
        for child, amount in counts.items():
            child.inc(amount)
        for child, entry in histograms.items():
            child._sum.inc(entry[0])
            for bucket, count in zip(child._buckets, entry[1:], strict=True):
                if count:
                    bucket.inc(count)

    def _schedule(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()  # no loop (a CLI command, a unit test): nothing to batch with
            return
        self._pending_on = loop
        loop.call_soon(self.flush)


def _has_buckets(child: Any) -> bool:
    return all(hasattr(child, name) for name in ("_upper_bounds", "_buckets", "_sum"))
