"""Screenshots of every page state, default and branded, into docs/pages/ (docs/pages.md).

    python scripts/page_screenshots.py

Each page is rendered from its sample context (gateway/web/pages/samples.py) with the
real templates and catalogs, served to headless Chromium (/usr/bin/chromium) under the
page's real Content-Security-Policy.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from playwright.async_api import Route, async_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.config.model import Ui  # noqa: E402
from gateway.web.pages.csp import new_nonce, page_policy  # noqa: E402
from gateway.web.pages.samples import PAGE_SAMPLES, PREFIX, shared_sample  # noqa: E402
from gateway.web.pages.site import Site  # noqa: E402

OUT = ROOT / "docs" / "pages"
ORIGIN = "https://gateway.example"
LOGO = OUT / "acme-logo.svg"
BRANDED = Ui(
    product_name="Acme Intranet",
    logo=str(LOGO),
    logo_alt="Acme",
    colours={"primary": "#7c2d12", "muted": "#57534e"},
    support_contact="it-help@acme.example",
    support_url="https://help.acme.example/",
    footer="© Acme Corp · Internal use only",
    provider_logos={},
)
# (file prefix, ui, colour scheme, language)
VARIANTS = [
    ("default", Ui(), "light", "en"),
    ("default-dark", Ui(), "dark", "en"),
    ("branded", BRANDED, "light", "en"),
    ("branded-de", BRANDED, "light", "de"),
]


def pages_for(site: Site, language: str) -> dict[str, tuple[str, str]]:
    """State name -> (HTML, CSP) for every sample page state."""
    out = {}
    for template, states in PAGE_SAMPLES.items():
        for state, context, status in states:
            nonce = new_nonce()
            full: dict[str, Any] = {
                **site.shared_context(),
                **shared_sample(),
                "lang": language,
                "nonce": nonce,
                "status": status,
                **context,
            }
            if template == "sign_in.html":
                full["providers"] = [{**p, "logo_url": None} for p in context["providers"]]
            form = ["'self'"] if template == "logout.html" else []
            out[state] = (
                site.renderer.render(template, full, language),
                page_policy(nonce, form_action=form),
            )
    return out


def server_of(rendered: dict[str, tuple[str, str]]) -> Callable[[Route], Awaitable[None]]:
    """A route handler serving the rendered pages and the logo at their gateway paths."""

    async def serve(route: Route) -> None:
        path = route.request.url.removeprefix(ORIGIN)
        if path == f"{PREFIX}/ui/logo":
            await route.fulfill(body=LOGO.read_bytes(), content_type="image/svg+xml")
            return
        html, policy = rendered[path.strip("/")]
        await route.fulfill(
            body=html,
            content_type="text/html; charset=utf-8",
            headers={"Content-Security-Policy": policy},
        )

    return serve


async def main() -> None:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox"]
        )
        for prefix, ui, scheme, language in VARIANTS:
            site = Site.compile(ui, PREFIX)
            rendered = pages_for(site, language)
            context = await browser.new_context(
                viewport={"width": 720, "height": 640}, color_scheme=scheme
            )
            page = await context.new_page()

            await page.route(f"{ORIGIN}/**", server_of(rendered))
            for state in rendered:
                await page.goto(f"{ORIGIN}/{state}")
                target = OUT / f"{prefix}-{state}.png"
                await page.screenshot(path=str(target), full_page=True)
                print(f"wrote {target.relative_to(ROOT)}")
            await context.close()
        await browser.close()


if __name__ == "__main__":
    asyncio.run(main())
