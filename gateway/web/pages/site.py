"""The compiled `ui` section: renderer, logos, colours and the context every page shares."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from gateway.config.model import Colours, Ui
from gateway.web.pages.assets import Logo
from gateway.web.pages.renderer import Renderer

_EMAIL = re.compile(r"^[^@\s<>\"']+@[^@\s<>\"']+\.[^@\s<>\"']+$")


@dataclass(frozen=True)
class Site:
    """Everything about the pages that comes from config, compiled once per config."""

    ui: Ui
    prefix: str
    renderer: Renderer
    logo: Logo | None
    provider_logos: dict[str, Logo]

    @classmethod
    def compile(cls, ui: Ui, prefix: str) -> Site:
        return cls(
            ui=ui,
            prefix=prefix.rstrip("/"),
            renderer=Renderer(ui.templates_dir, ui.default_language),
            logo=Logo.from_config(ui.logo, "ui.logo") if ui.logo else None,
            provider_logos={
                name: Logo.from_config(source, f"ui.provider_logos.{name}")
                for name, source in ui.provider_logos.items()
            },
        )

    def logo_url(self) -> str | None:
        return f"{self.prefix}/ui/logo" if self.logo is not None else None

    def provider_logo_url(self, provider: str) -> str | None:
        if provider not in self.provider_logos:
            return None
        return f"{self.prefix}/ui/providers/{provider}/logo"

    def shared_context(self) -> dict[str, Any]:
        """What every template gets from config (docs/pages.md lists it)."""
        ui = self.ui
        contact = ui.support_contact
        return {
            "product_name": ui.product_name,
            "logo_url": self.logo_url(),
            "logo_alt": ui.logo_alt or ui.product_name,
            "colours": _colours(ui.colours),
            "dark_colours": _colours(ui.dark_colours),
            "support_contact": contact,
            "support_email": contact if contact and _EMAIL.match(contact) else None,
            "support_url": ui.support_url,
            "footer": ui.footer,
            "prefix": self.prefix,
        }


def _colours(colours: Colours) -> dict[str, str]:
    return colours.model_dump()
