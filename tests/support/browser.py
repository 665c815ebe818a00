"""Headless Chromium (Debian's /usr/bin/chromium) through Python Playwright's async API.

Why async, and why the session event loop: the sync Playwright API keeps its own event
loop marked as running for as long as it is open, which breaks every asyncio test that
comes after it; and a Playwright object only works on the event loop that created it.
So `browser` is a session-scoped async fixture on the *session* event loop, and every
test that uses it (directly or through `page`) is moved onto the session loop by
`mark_browser_tests` (called from tests/conftest.py's pytest_collection_modifyitems).
Such a test must not use async fixtures that run on the function loop (for example
pytest-aiohttp's `aiohttp_client`): create aiohttp sessions inside the test instead.
That combination is reported as a collection error rather than failing obscurely.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    """One Chromium for the whole session (launched on first use)."""
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest_asyncio.fixture(loop_scope="session")
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A page in a fresh browser context (own cookies), closed after the test."""
    context = await browser.new_context()
    context.set_default_timeout(15_000)
    try:
        yield await context.new_page()
    finally:
        await context.close()


def _fixture_loop_scope(func: object, default: str) -> str | None:
    """The loop scope of an async fixture function, None for a sync fixture."""
    if not (inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func)):
        return None
    scope = getattr(func, "_loop_scope", None)
    return str(scope or default)


def mark_browser_tests(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run every test that uses `browser` on the session event loop (see module doc)
    and mark it `browser`."""
    default = str(config.getini("asyncio_default_fixture_loop_scope") or "function")
    for item in items:
        if "browser" not in getattr(item, "fixturenames", ()):
            continue
        # prepend, so it wins over the bare marker that asyncio_mode=auto adds
        item.add_marker(pytest.mark.asyncio(loop_scope="session"), append=False)
        item.add_marker(pytest.mark.browser)  # so that -m "not browser" leaves it out
        info = getattr(item, "_fixtureinfo", None)
        if info is None:
            continue
        for name, defs in info.name2fixturedefs.items():
            for fixturedef in defs:
                scope = _fixture_loop_scope(fixturedef.func, default)
                if scope not in (None, "session"):
                    raise pytest.UsageError(
                        f"{item.nodeid} uses the browser (session event loop) and the "
                        f"async fixture {name!r}, which runs on the {scope} event loop; "
                        "objects of one loop cannot be used on the other. Create it "
                        "inside the test, or give the fixture loop_scope='session'."
                    )
