"""One outbound JSON call to an identity provider, with plain-sentence failures."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from gateway import metrics, tracing
from gateway.errors import ProviderUnavailable
from gateway.idp.addresses import AddressGuard

MAX_RESPONSE_BYTES = 1024 * 1024


def display_url(url: str) -> str:
    """The URL without credentials, query or fragment, safe to put in a message."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


async def fetch_json(
    session: aiohttp.ClientSession,
    url: str,
    *,
    guard: AddressGuard,
    timeout: float,  # noqa: ASYNC109 - becomes aiohttp's per-request ClientTimeout
    method: str = "GET",
    data: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    auth: tuple[str, str] | None = None,
    json_body: Any = None,
    endpoint: str = "api",
) -> tuple[int, dict[str, Any]]:
    """Call the URL and return (status, JSON object); `auth` is (user, password) for Basic.

    4xx answers with a JSON object are returned for the caller to read (e.g. OAuth
    errors); anything else that is not a 2xx JSON object raises ProviderUnavailable.
    ``endpoint`` names the call in metrics and traces (one of metrics.PROVIDER_ENDPOINTS).
    """
    status, body, where = await _call(
        session, url, guard=guard, timeout=timeout, method=method, data=data,
        headers=headers, auth=auth, json_body=json_body, endpoint=endpoint,
    )  # fmt: skip
    document = _parse(status, body, where)
    if not isinstance(document, dict):
        if status >= 400:
            raise ProviderUnavailable(f"{where} answered HTTP {status}")
        raise ProviderUnavailable(f"{where} did not answer with a JSON object")
    return status, document


async def fetch_json_list(
    session: aiohttp.ClientSession,
    url: str,
    *,
    guard: AddressGuard,
    timeout: float,  # noqa: ASYNC109 - becomes aiohttp's per-request ClientTimeout
    headers: Mapping[str, str] | None = None,
) -> tuple[int, list[Any] | dict[str, Any]]:
    """GET an API answering a JSON array (GitHub's lists); a 4xx object is returned as is."""
    status, body, where = await _call(
        session, url, guard=guard, timeout=timeout, method="GET", headers=headers, endpoint="api"
    )
    document = _parse(status, body, where)
    if isinstance(document, list) and status < 400:
        return status, document
    if isinstance(document, dict) and status >= 400:
        return status, document
    raise ProviderUnavailable(f"{where} answered HTTP {status} without the expected JSON")


async def _call(
    session: aiohttp.ClientSession,
    url: str,
    *,
    guard: AddressGuard,
    timeout: float,  # noqa: ASYNC109 - becomes aiohttp's per-request ClientTimeout
    method: str,
    data: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    auth: tuple[str, str] | None = None,
    json_body: Any = None,
    endpoint: str,
) -> tuple[int, bytes, str]:
    await guard.check(url)
    where = display_url(url)
    # The host is the provider's label: bounded by the configured providers' documents.
    host = urlsplit(url).hostname or "-"
    sent_headers = {"Accept": "application/json", **(headers or {})}
    if auth is not None:
        sent_headers["Authorization"] = aiohttp.encode_basic_auth(*auth)
    started = time.perf_counter()
    result = "protocol"  # what an exception not listed below (an oversized body) counts as
    attributes = {"server.address": host, "http.request.method": method}
    try:
        with tracing.span(f"provider {endpoint}", attributes, client=True) as span:
            tracing.inject(sent_headers)
            async with session.request(
                method,
                url,
                data=dict(data) if data is not None else None,
                json=json_body,
                headers=sent_headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                body = await _read_capped(response, where)
                status = response.status
            span.set_attribute("http.response.status_code", status)
            result = metrics.status_class(status)
    except TimeoutError:
        result = "timeout"
        raise ProviderUnavailable(f"{where} did not answer within {timeout:g} s") from None
    except aiohttp.ClientConnectorError as exc:
        result = "connect"
        raise ProviderUnavailable(f"could not connect to {where}: {_os_reason(exc)}") from None
    except aiohttp.ClientError as exc:
        raise ProviderUnavailable(f"{where} broke the connection ({type(exc).__name__})") from None
    finally:
        metrics.provider_call(host, endpoint, result, time.perf_counter() - started)
    return status, body, where


async def _read_capped(response: aiohttp.ClientResponse, where: str) -> bytes:
    if response.content_length is not None and response.content_length > MAX_RESPONSE_BYTES:
        raise ProviderUnavailable(f"{where} sent a response larger than 1 MiB")
    body = await response.content.read(MAX_RESPONSE_BYTES + 1)
    if len(body) > MAX_RESPONSE_BYTES:
        raise ProviderUnavailable(f"{where} sent a response larger than 1 MiB")
    return body


def _os_reason(exc: aiohttp.ClientConnectorError) -> str:
    if isinstance(exc.os_error, ConnectionRefusedError):
        return "connection refused"
    return exc.os_error.strerror or type(exc.os_error).__name__


def _parse(status: int, body: bytes, where: str) -> Any:
    if 300 <= status < 400:
        raise ProviderUnavailable(
            f"{where} answered with a redirect (HTTP {status}); configure the final URL"
        )
    if status >= 500:
        raise ProviderUnavailable(f"{where} answered HTTP {status}")
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        if status >= 400:
            raise ProviderUnavailable(f"{where} answered HTTP {status}") from None
        return None  # the caller names what it expected


__all__ = ["MAX_RESPONSE_BYTES", "display_url", "fetch_json", "fetch_json_list"]
