"""The pages' building blocks: language choice, CSP with nonces, templates and their
documented context, overrides, escaping, branding config, translations, contrast."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from babel.messages.pofile import read_po

from gateway.config import parse_config
from gateway.config.model import Colours, DarkColours, Ui
from gateway.errors import ConfigError
from gateway.web.app import build_app
from gateway.web.pages.contrast import contrast
from gateway.web.pages.language import choose_language
from gateway.web.pages.renderer import LOCALE_DIR, Renderer
from gateway.web.pages.respond import account_of
from gateway.web.pages.samples import PAGE_SAMPLES, shared_sample
from gateway.web.pages.site import Site
from gateway.web.rules import config_findings, refuse_on_errors

ROOT = Path(__file__).resolve().parents[2]
HTML = {"Accept": "text/html"}
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'
ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]


def config_text(ui: str = "") -> str:
    routes = 'routes: [{path: /, upstream: "http://127.0.0.1:9", auth: public}]\n'
    return routes + (f"ui:\n{ui}" if ui else "")


def render_sample(site: Site, template: str, language: str = "en", **extra: Any) -> str:
    _, context, status = PAGE_SAMPLES[template][0]
    full = {**site.shared_context(), **shared_sample(), "status": status, **context, **extra}
    return site.renderer.render(template, full, language)


def test_language_follows_accept_language_then_default_unless_forced() -> None:
    """Accept-Language ranks by q; unknown or no languages give the default; config forces."""
    available = {"en", "de", "fr"}
    assert choose_language("fr;q=0.5, de-CH;q=0.9, xx", available, forced=None, default="en") == (
        "de"
    )
    assert choose_language("es, it;q=0.8", available, forced=None, default="en") == "en"
    assert choose_language("de;q=0, fr;q=0.1", available, forced=None, default="en") == "fr"
    assert choose_language("", available, forced=None, default="fr") == "fr"
    assert choose_language("de", available, forced="fr", default="en") == "fr"


@pytest.mark.parametrize("template", sorted(PAGE_SAMPLES))
@pytest.mark.parametrize("language", ["en", "de", "fr"])
def test_every_page_renders_its_documented_context_in_every_language(
    template: str, language: str
) -> None:
    """Each template renders with exactly its documented sample context (undefined names
    fail), in the page's language (lang attribute), with one h1 inside main."""
    site = Site.compile(Ui(), "/_gateway")
    for _, context, status in PAGE_SAMPLES[template]:
        full = {**site.shared_context(), **shared_sample(), "lang": language, "status": status}
        html = site.renderer.render(template, {**full, **context}, language)
        assert f'<html lang="{language}">' in html
        assert html.count("<h1>") == 1
        assert re.search(r"<main id=\"main\">\s*<h1>", html)


def test_translated_pages_use_the_catalogs() -> None:
    """German and French pages show catalog text, English the templates' own."""
    site = Site.compile(Ui(), "/_gateway")
    assert "Anderes Konto verwenden" in render_sample(site, "forbidden.html", "de")
    assert "Utiliser un autre compte" in render_sample(site, "forbidden.html", "fr")
    assert "Use another account" in render_sample(site, "forbidden.html", "en")


def test_claims_and_config_reach_the_page_only_as_text() -> None:
    """A hostile display name, product name, footer and support contact are escaped."""
    ui = Ui(product_name=HOSTILE[:80], footer=HOSTILE, support_contact=HOSTILE)
    site = Site.compile(ui, "/_gateway")
    account = account_of({"sub": "x", "name": HOSTILE, "email": HOSTILE})
    html = render_sample(site, "forbidden.html", account=account)
    assert "<script>" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html


async def test_pages_send_a_strict_csp_whose_nonce_is_on_the_style_only(
    aiohttp_client: ClientFactory,
) -> None:
    """No 'unsafe-inline', no script source: the one <style> carries this response's
    nonce, and each response has a new one."""
    client = await aiohttp_client(build_app(parse_config(config_text())))
    nonces = []
    for _ in range(2):
        response = await client.get("/_gateway/nope", headers=HTML)
        assert response.status == 404
        policy = response.headers["Content-Security-Policy"]
        assert "unsafe" not in policy
        assert "script-src" not in policy
        assert policy.startswith("default-src 'none'; ")
        assert "frame-ancestors 'none'" in policy
        nonce = re.search(r"style-src 'nonce-([A-Za-z0-9_-]{20,})'", policy)
        assert nonce is not None
        html = await response.text()
        assert re.findall(r"<style[^>]*>", html) == [f'<style nonce="{nonce.group(1)}">']
        assert "<script" not in html
        nonces.append(nonce.group(1))
    assert nonces[0] != nonces[1]


async def test_json_clients_still_get_json(aiohttp_client: ClientFactory) -> None:
    """An API client asking for JSON gets the same JSON error as before, no page."""
    client = await aiohttp_client(build_app(parse_config(config_text())))
    response = await client.get("/_gateway/nope", headers={"Accept": "application/json"})
    assert response.status == 404
    body = await response.json()
    assert body["error"] == "not_found"
    assert body["request_id"] == response.headers["X-Request-ID"]


async def test_logo_file_is_served_by_the_gateway_with_its_type(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    """ui.logo from a file is served at {prefix}/ui/logo (sandboxed), and the pages point
    there, so the CSP needs no other origin."""
    logo = tmp_path / "logo.svg"
    logo.write_text('<svg xmlns="http://www.w3.org/2000/svg"><rect width="9" height="9"/></svg>')
    client = await aiohttp_client(
        build_app(parse_config(config_text(f"  logo: {logo}\n  logo_alt: Acme\n")))
    )
    served = await client.get("/_gateway/ui/logo")
    assert served.status == 200
    assert served.headers["Content-Type"] == "image/svg+xml"
    assert "sandbox" in served.headers["Content-Security-Policy"]
    assert await served.read() == logo.read_bytes()
    page = await (await client.get("/_gateway/nope", headers=HTML)).text()
    assert '<img src="/_gateway/ui/logo" alt="Acme">' in page
    assert (await client.get("/_gateway/ui/providers/none/logo")).status == 404


def test_override_replaces_a_page_and_cannot_render_unescaped(tmp_path: Path) -> None:
    """A template in ui.templates_dir replaces the page; what it prints is escaped even
    from a file name autoescaping would not select; it may extend the default base."""
    (tmp_path / "forbidden.html").write_text(
        "<!DOCTYPE html><html lang='{{ lang }}'><body><main><h1>No</h1>"
        "<p id=who>{{ account.display }}</p></main></body></html>"
    )
    (tmp_path / "sign_in.html").write_text(
        '{% extends "default/base.html" %}{% block title %}Welcome{% endblock %}'
        "{% block content %}<p>Custom {{ providers[0].label }}</p>{% endblock %}"
    )
    site = Site.compile(Ui(templates_dir=str(tmp_path)), "/_gateway")
    html = render_sample(site, "forbidden.html", account=account_of({"name": HOSTILE}))
    assert html.startswith("<!DOCTYPE html><html lang='en'><body><main><h1>No</h1>")
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    chooser = render_sample(site, "sign_in.html")
    assert "<p>Custom Corporate SSO</p>" in chooser
    assert "<h1>Welcome</h1>" in chooser
    assert "Request ID" in chooser  # the default frame around the custom content


def test_override_with_a_syntax_error_is_a_config_error_naming_it(tmp_path: Path) -> None:
    """A broken override stops the start with the file and line, not a user's page."""
    (tmp_path / "logout.html").write_text("<p>\n{% if account %}never closed</p>")
    with pytest.raises(ConfigError) as caught:
        Site.compile(Ui(templates_dir=str(tmp_path)), "/_gateway")
    assert caught.value.problems[0].startswith("ui.templates_dir: logout.html line 2:")


def test_override_failing_at_render_falls_back_to_the_default(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An override using a name its page does not have shows the default page and logs."""
    (tmp_path / "logged_out.html").write_text("<p>{{ no_such_name }}</p>")
    site = Site.compile(Ui(templates_dir=str(tmp_path)), "/_gateway")
    with caplog.at_level(logging.ERROR, logger="gateway.pages"):
        html = render_sample(site, "logged_out.html")
    assert "You are signed out." in html
    assert "template override logged_out.html failed" in caplog.text


def test_override_directory_can_add_a_language(tmp_path: Path) -> None:
    """A catalog under templates_dir/locale adds a language the browser can choose."""
    target = tmp_path / "locale" / "nl" / "LC_MESSAGES"
    target.mkdir(parents=True)
    subprocess.run(
        [sys.executable, "-c", _NL_CATALOG, str(target / "gateway.mo")], check=True, timeout=60
    )
    renderer = Renderer(str(tmp_path), "en")
    assert "nl" in renderer.languages
    site = Site.compile(Ui(templates_dir=str(tmp_path)), "/_gateway")
    assert "Toegang geweigerd" in render_sample(site, "forbidden.html", "nl")


_NL_CATALOG = """
import sys
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
catalog = Catalog(locale="nl", domain="gateway")
catalog.add("Access denied", "Toegang geweigerd")
with open(sys.argv[1], "wb") as handle:
    write_mo(handle, catalog)
"""


@pytest.mark.parametrize(
    ("ui", "problem"),
    [
        ("  colours: {primary: 'red;}body{display:none'}\n", "ui.colours.primary:"),
        ("  logo: /nonexistent/logo.png\n", "ui.logo: cannot read"),
        ("  provider_logos: {nope: /x.png}\n", "ui.provider_logos.nope: no provider"),
        ("  language: deutsch\n", "ui.language:"),
    ],
)
def test_bad_ui_config_names_the_key(ui: str, problem: str) -> None:
    """Colours must be #rrggbb (they go into CSS), logo files must exist, and so on."""

    def start() -> None:  # what `gateway run` does: the rules, then the app
        config = parse_config(config_text(ui))
        refuse_on_errors(config)
        build_app(config)

    with pytest.raises(ConfigError) as caught:
        start()
    assert any(problem in line for line in caught.value.problems), caught.value.problems


def test_logo_that_is_not_an_image_is_a_config_error(tmp_path: Path) -> None:
    """An HTML file posing as the logo is refused at start: only images are served."""
    fake = tmp_path / "logo.png"
    fake.write_text("<html><script>alert(1)</script></html>")
    with pytest.raises(ConfigError, match=r"ui\.logo: .* is not a PNG, JPEG, GIF, WebP or SVG"):
        Site.compile(Ui(logo=str(fake)), "/_gateway")


@pytest.mark.parametrize("scheme", [Colours(), DarkColours()], ids=["light", "dark"])
def test_default_colours_meet_wcag_aa_contrast(scheme: Colours) -> None:
    """Body text, secondary text, links and button labels reach 4.5:1 (WCAG 2.1 AA)."""
    assert contrast(scheme.text, scheme.background) >= 4.5
    assert contrast(scheme.muted, scheme.background) >= 4.5
    assert contrast(scheme.primary, scheme.background) >= 4.5
    assert contrast(scheme.on_primary, scheme.primary) >= 4.5


def test_translation_catalogs_are_complete_and_compiled() -> None:
    """Every template message is in gateway.pot, translated in each shipped language, and
    the .mo files the gateway reads are compiled from the .po files as they are."""
    check = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "translations.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stderr
    languages = sorted(p.parent.parent.name for p in LOCALE_DIR.glob("*/LC_MESSAGES/gateway.po"))
    assert languages == ["de", "fr"]
    for language in languages:
        with (LOCALE_DIR / language / "LC_MESSAGES" / "gateway.po").open("rb") as handle:
            catalog = read_po(handle, locale=language)
        untranslated = [m.id for m in catalog if m.id and not m.string]
        assert untranslated == [], language


def test_check_reports_unreadable_colours_and_broken_templates(tmp_path: Path) -> None:
    """`gateway check` warns about colours below WCAG AA and fails on a broken template."""
    (tmp_path / "error.html").write_text("{% block %}")
    config = parse_config(
        config_text(f"  colours: {{text: '#aaaaaa'}}\n  templates_dir: {tmp_path}\n")
    )
    findings = [(f.level, f.subject, f.message) for f in config_findings(config)]
    assert ("error", "ui") in [(level, subject) for level, subject, _ in findings]
    (tmp_path / "error.html").unlink()
    findings = [(f.level, f.subject, f.message) for f in config_findings(config)]
    assert ("warn", "ui.colours", "text on background is 2.3:1, below 4.5:1 (WCAG AA)") in findings
    assert not any(subject.startswith("ui") and level == "error" for level, subject, _ in findings)
