"""The external HTTP authorizer of a route: one POST per decision, time-limited, cached.

It fails closed: no answer in time, a broken connection or a 5xx refuses the request
with 503 (the log says why); any other answer but a well-formed allow is a 403.
"""

from __future__ import annotations

import json
import time
from typing import Any

import aiohttp

from gateway.config.model import ExternalAuthorizer
from gateway.errors import AuthorizerUnavailable
from gateway.idp.http import display_url
from gateway.policy.ext_authz import ExternalDecision, read_answer, request_key
from gateway.tokens.expiring_cache import ExpiringCache

MAX_ANSWER_BYTES = 64 * 1024


class AuthorizerClient:
    """Asks one route's authorizer; remembers answers for `cache_ttl` seconds."""

    def __init__(self, config: ExternalAuthorizer) -> None:
        self.config = config
        self._cache: ExpiringCache[str, ExternalDecision] = ExpiringCache(config.cache_max_entries)

    async def decide(self, http: aiohttp.ClientSession, body: dict[str, Any]) -> ExternalDecision:
        key = request_key(body)
        now = time.monotonic()
        cached = self._cache.get(key, now) if self.config.cache_ttl else None
        if cached is not None:
            return cached
        status, answer = await self._ask(http, body)
        decision = read_answer(status, answer, self.config.upstream_headers)
        if self.config.cache_ttl and status == 200 and isinstance(answer, dict):
            self._cache.put(key, decision, now + self.config.cache_ttl)
        return decision

    async def _ask(self, http: aiohttp.ClientSession, body: dict[str, Any]) -> tuple[int, Any]:
        where = display_url(self.config.url)
        try:
            async with http.post(
                self.config.url,
                json=body,
                headers={"Accept": "application/json"},
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self.config.timeout),
            ) as response:
                raw = await response.content.read(MAX_ANSWER_BYTES + 1)
                status = response.status
        except TimeoutError:
            raise AuthorizerUnavailable(
                f"authorizer {where} did not answer within {self.config.timeout} s"
            ) from None
        except aiohttp.ClientError as exc:
            raise AuthorizerUnavailable(
                f"authorizer {where} unreachable: {type(exc).__name__}"
            ) from None
        if status >= 500:
            raise AuthorizerUnavailable(f"authorizer {where} answered HTTP {status}")
        if len(raw) > MAX_ANSWER_BYTES:
            return status, None
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, None
