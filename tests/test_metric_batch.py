"""Per-request metrics batched once per loop turn read exactly as if observed one by one."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from gateway import metrics
from gateway.metric_batch import LoopBatch

BUCKETS = (0.005, 0.01, 0.1, 1.0)
# On, just above and just below the bounds, and beyond the last one (+Inf bucket).
VALUES = (0.0, 0.005, 0.0050001, 0.0099, 0.01, 0.05, 0.1, 0.99, 1.0, 1.5, 400.0)


def _pair() -> tuple[CollectorRegistry, Histogram, Counter]:
    registry = CollectorRegistry()
    histogram = Histogram("d", "seconds", ["route"], buckets=BUCKETS, registry=registry)
    counter = Counter("n", "count", ["route"], registry=registry)
    return registry, histogram, counter


def test_a_batched_histogram_reads_like_one_observed_value_by_value() -> None:
    """Every bucket, the count and the sum equal prometheus_client's own observe()."""
    direct, direct_h, direct_c = _pair()
    batched, batched_h, batched_c = _pair()
    batch = LoopBatch()
    for value in VALUES:
        direct_h.labels("a").observe(value)
        direct_c.labels("a").inc()
        batch.observe(batched_h.labels("a"), value)
        batch.inc(batched_c.labels("a"))
    batch.flush()
    assert generate_latest(direct) == generate_latest(batched)


async def test_counts_reach_the_registry_on_the_next_loop_turn() -> None:
    """Within a turn nothing is written; one turn later every count is."""
    registry, histogram, counter = _pair()
    batch = LoopBatch()
    for _ in range(3):
        batch.inc(counter.labels("a"))
        batch.observe(histogram.labels("a"), 0.02)
    assert registry.get_sample_value("n_total", {"route": "a"}) == 0.0
    await asyncio.sleep(0)
    assert registry.get_sample_value("n_total", {"route": "a"}) == 3.0
    assert registry.get_sample_value("d_bucket", {"route": "a", "le": "0.1"}) == 3.0
    assert registry.get_sample_value("d_bucket", {"route": "a", "le": "0.01"}) == 0.0
    assert registry.get_sample_value("d_sum", {"route": "a"}) == 0.06


def test_without_a_running_loop_counts_are_written_at_once() -> None:
    """A CLI command or a synchronous caller has no next turn to wait for."""
    registry, _histogram, counter = _pair()
    LoopBatch().inc(counter.labels("a"))
    assert registry.get_sample_value("n_total", {"route": "a"}) == 1.0


def test_a_loop_closed_before_its_flush_does_not_stop_later_counting() -> None:
    """Counts made on a loop that closed before its turn still reach the registry."""
    registry, _histogram, counter = _pair()
    batch = LoopBatch()

    async def count_and_leave() -> None:
        batch.inc(counter.labels("a"))

    loop = asyncio.new_event_loop()
    loop.run_until_complete(count_and_leave())
    loop.close()  # the scheduled flush never ran

    async def count_again() -> None:
        batch.inc(counter.labels("a"))
        await asyncio.sleep(0)

    asyncio.run(count_again())
    assert registry.get_sample_value("n_total", {"route": "a"}) == 2.0


async def test_a_scrape_in_the_same_turn_includes_the_requests_just_answered() -> None:
    """The exposition flushes first: a request answered this turn is in the scrape."""

    def served(text: str) -> float:
        line = next(
            (
                ln
                for ln in text.splitlines()
                if ln.startswith('gateway_requests_total{method="read",route="batch-test"')
            ),
            None,
        )
        return float(line.rsplit(" ", 1)[1]) if line else 0.0

    before = served(metrics.exposition()[0].decode())
    metrics.observe_request("batch-test", "GET", 200, 0.001)
    assert served(metrics.exposition()[0].decode()) == before + 1
