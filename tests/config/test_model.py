"""Cross-field rules of the configuration model."""

from __future__ import annotations

import pytest

from gateway.config import parse_config
from gateway.errors import ConfigError
from gateway.web.rules import refuse_on_errors

PROVIDER = (
    "providers: [{name: op, issuer: 'https://idp.example.com', client_id: c, client_secret: s}]\n"
)


def test_memory_store_with_several_workers_is_refused() -> None:
    """Sessions in one worker's memory would be unknown to the others: a config error."""
    text = "listen: {workers: 2}\nroutes: [{path: /, upstream: 'http://u'}]\n" + PROVIDER
    with pytest.raises(ConfigError, match=r"listen\.workers: each worker process"):
        refuse_on_errors(parse_config(text))


def test_redis_store_with_several_workers_is_fine() -> None:
    """With Redis every worker sees every session."""
    text = (
        "listen: {workers: 2}\nroutes: [{path: /, upstream: 'http://u'}]\n"
        "sessions: {store: redis}\n" + PROVIDER
    )
    assert 2 == parse_config(text).listen.workers


@pytest.mark.parametrize(
    ("route", "message"),
    [
        ("{path: /, upstream: 'http://u', auth: public, policy: {groups: [admins]}}",
         r"routes\[0\].*only policy\.methods applies"),
        ("{path: /x, upstream: 'http://u', raw_path: true, strip_prefix: true}",
         r"routes\[0\].*raw_path and strip_prefix"),
        ("{path: '/a/../b', upstream: 'http://u'}", r"routes\[0\]\.path.*plain decoded path"),
        ("{path: '/a;x', upstream: 'http://u'}", r"routes\[0\]\.path.*plain decoded path"),
        ("{path: '/a%2Fb', upstream: 'http://u'}", r"routes\[0\]\.path.*plain decoded path"),
        ("{path: '//a', upstream: 'http://u'}", r"routes\[0\]\.path.*plain decoded path"),
    ],
)  # fmt: skip
def test_route_rules_are_config_errors(route: str, message: str) -> None:
    """Rules that could never be applied, or paths no canonical request can match, are
    refused at start-up with their key path."""
    with pytest.raises(ConfigError, match=message):
        parse_config(f"routes: [{route}]\n")


@pytest.mark.parametrize(
    ("written", "seconds"),
    [("90s", 90.0), ("15m", 900.0), ("8h", 28800.0), ("7d", 604800.0), ("500ms", 0.5),
     (1.5, 1.5), ("3600", 3600.0)],
)  # fmt: skip
def test_durations_take_units(written: object, seconds: float) -> None:
    """`idle_timeout: 1h` used to fail with "unable to parse string as a number"."""
    text = f"routes: [{{path: /, upstream: 'http://u'}}]\nsessions: {{idle_timeout: '{written}'}}"
    assert parse_config(text).sessions.idle_timeout == seconds


@pytest.mark.parametrize(
    ("written", "size"), [("10MiB", 10 * 2**20), ("64KiB", 65536), ("1MB", 10**6), (2048, 2048)]
)
def test_sizes_take_units(written: object, size: int) -> None:
    """Body and header limits accept KiB/MiB/GiB and kB/MB/GB as well as bytes."""
    text = f"routes: [{{path: /, upstream: 'http://u'}}]\nlimits: {{max_body_size: '{written}'}}"
    assert parse_config(text).limits.max_body_size == size


def test_a_duration_without_a_known_unit_names_the_units() -> None:
    """`1 hour` is refused with the key path and the units that work."""
    text = "routes: [{path: /, upstream: 'http://u'}]\nsessions: {idle_timeout: 1 hour}"
    with pytest.raises(ConfigError, match=r"sessions\.idle_timeout: expected seconds or a dur"):
        parse_config(text)
