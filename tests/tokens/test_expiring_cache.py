"""The bounded expiring cache behind token and principal caching (clock passed in)."""

from __future__ import annotations

import pytest

from gateway.tokens.expiring_cache import ExpiringCache


def test_an_entry_lives_until_its_expiry_and_not_at_it() -> None:
    """A value is returned before its expiry time and gone at that very moment."""
    cache: ExpiringCache[str, str] = ExpiringCache(4)
    cache.put("t", "alice", expires_at=100.0)
    assert "alice" == cache.get("t", 99.9)
    assert (100.0, "alice") == cache.get_entry("t", 99.9)
    assert cache.get("t", 100.0) is None
    assert 0 == len(cache)


def test_the_least_recently_used_entry_goes_first() -> None:
    """Over max_entries, the entry read least recently is dropped, not the newest."""
    cache: ExpiringCache[str, int] = ExpiringCache(2)
    cache.put("a", 1, 100.0)
    cache.put("b", 2, 100.0)
    assert 1 == cache.get("a", 0.0)  # "a" is now the most recent
    cache.put("c", 3, 100.0)
    assert 2 == len(cache)
    assert cache.get("b", 0.0) is None
    assert (1, 3) == (cache.get("a", 0.0), cache.get("c", 0.0))


def test_putting_again_replaces_and_refreshes() -> None:
    """Putting a key again replaces its value and expiry and makes it the most recent."""
    cache: ExpiringCache[str, int] = ExpiringCache(2)
    cache.put("a", 1, 10.0)
    cache.put("b", 2, 100.0)
    cache.put("a", 3, 100.0)
    cache.put("c", 4, 100.0)
    assert (3, None, 4) == (cache.get("a", 50.0), cache.get("b", 50.0), cache.get("c", 50.0))


def test_a_missing_key_is_none() -> None:
    """An unknown key is None, not an error."""
    assert ExpiringCache[str, int](1).get_entry("x", 0.0) is None


@pytest.mark.parametrize("size", [0, -1])
def test_a_cache_must_hold_at_least_one_entry(size: int) -> None:
    """max_entries below 1 is refused at construction."""
    with pytest.raises(ValueError, match=r"^max_entries must be at least 1$"):
        ExpiringCache[str, int](size)


def test_one_entry_is_enough() -> None:
    """max_entries of 1 keeps exactly the newest entry."""
    cache: ExpiringCache[str, int] = ExpiringCache(1)
    cache.put("a", 1, 10.0)
    cache.put("b", 2, 10.0)
    assert (None, 2) == (cache.get("a", 0.0), cache.get("b", 0.0))
