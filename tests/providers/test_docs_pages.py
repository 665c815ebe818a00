"""docs/providers/<profile>.md: one page per profile, every YAML block a valid config."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.config.load import parse_config
from gateway.providers import PROFILES

DOCS = Path(__file__).resolve().parents[2] / "docs" / "providers"
YAML_BLOCK = re.compile(r"```yaml\n(.*?)```", re.DOTALL)
PAGES = sorted(p for p in PROFILES if p != "generic")
ENV = {"SESSION_SECRET": "x" * 40} | {
    f"{name.upper()}_CLIENT_SECRET": "client-secret-from-env" for name in [*PAGES, "keycloak"]
}


@pytest.mark.parametrize("profile", PAGES)
def test_every_config_block_of_a_provider_page_is_valid(
    profile: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each profile has a page; each of its YAML blocks loads through the real config loader
    (env placeholders filled), and one of them configures that profile."""
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    text = (DOCS / f"{profile}.md").read_text()
    blocks = YAML_BLOCK.findall(text)
    assert blocks, f"{profile}.md has no config block"
    configs = [parse_config(block) for block in blocks]
    profiles = {p.profile for c in configs for p in c.providers}
    profiles |= {i.profile for c in configs for i in c.bearer.issuers}
    assert profile in profiles
    for heading in ("## What to register", "## Configuration", "## Claims", "## Known limits"):
        assert heading in text, f"{profile}.md lacks {heading!r}"
