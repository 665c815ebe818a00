"""axe-core (npm, tests/a11y) run inside real Chromium on a page, light and dark.

The script is evaluated through the DevTools protocol, which the page's own CSP does not
govern, so the pages are checked with their real, strict Content-Security-Policy on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.async_api import Page

AXE = Path(__file__).resolve().parents[1] / "a11y" / "node_modules" / "axe-core" / "axe.min.js"
# WCAG 2.1 A and AA, plus axe's best practices (landmarks, one main, headings, skip link).
RULE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]

_RUN = """async (tags) => {
  const result = await axe.run(document, {runOnly: {type: 'tag', values: tags}});
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map(n => n.target.join(' ') + ': ' + n.failureSummary),
  }));
}"""


async def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's violations on the page as it is now."""
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.evaluate(AXE.read_text(encoding="utf-8") + "\n;0")
    violations: list[dict[str, Any]] = await page.evaluate(_RUN, RULE_TAGS)
    return violations


async def assert_accessible(page: Page) -> None:
    """0 axe violations in the light and in the dark colour scheme."""
    for scheme in ("light", "dark"):
        await page.emulate_media(color_scheme=scheme)
        violations = await axe_violations(page)
        assert violations == [], f"{scheme} scheme of {page.url}: {violations}"
    await page.emulate_media(color_scheme="light")
