"""Templates to HTML: the defaults, overridden file by file from ``ui.templates_dir``.

Autoescaping is always on, whatever a template's file name: a claim or a config value
can only reach a page as text. A broken override (syntax error at start, or an error
while rendering) never shows a traceback: the default template is used and logged.
"""

from __future__ import annotations

import gettext
import itertools
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2

from gateway.errors import ConfigError

log = logging.getLogger("gateway.pages")
HERE = Path(__file__).resolve().parent
DEFAULT_TEMPLATES = HERE / "templates"
LOCALE_DIR = HERE / "locale"
DOMAIN = "gateway"


def shipped_languages() -> frozenset[str]:
    """English (the templates' own text) plus every language with a compiled catalog."""
    found = {p.parent.parent.name for p in LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.mo")}
    return frozenset({"en", *found})


def _catalog(directory: Path, language: str) -> gettext.NullTranslations | None:
    path = directory / language / "LC_MESSAGES" / f"{DOMAIN}.mo"
    if not path.is_file():
        return None
    with path.open("rb") as handle:
        return gettext.GNUTranslations(handle)


def _environment(
    loader: jinja2.BaseLoader, translations: gettext.NullTranslations
) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=loader,
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]
    return env


class Renderer:
    """One Jinja2 environment per language, for the overrides and for the defaults."""

    def __init__(self, templates_dir: str | None, default_language: str) -> None:
        self.default_language = default_language
        defaults = jinja2.FileSystemLoader(DEFAULT_TEMPLATES)
        override_dir = Path(templates_dir) if templates_dir else None
        if override_dir is not None and not override_dir.is_dir():
            raise ConfigError([f"ui.templates_dir: {templates_dir!r} is not a directory"])
        self._override_dir = override_dir
        languages = set(shipped_languages())
        if override_dir is not None:
            extra = override_dir / "locale"
            languages |= {p.parent.parent.name for p in extra.glob(f"*/LC_MESSAGES/{DOMAIN}.mo")}
        self.languages = frozenset(languages)
        # "default/x.html" always names the shipped template, so an override can extend it.
        prefixed = jinja2.PrefixLoader({"default": defaults})
        loader: jinja2.BaseLoader = (
            jinja2.ChoiceLoader([jinja2.FileSystemLoader(override_dir), prefixed, defaults])
            if override_dir is not None
            else jinja2.ChoiceLoader([prefixed, defaults])
        )
        self._envs: dict[str, jinja2.Environment] = {}
        self._default_envs: dict[str, jinja2.Environment] = {}
        for language in self.languages:
            translations = self._translations(language)
            self._envs[language] = _environment(loader, translations)
            self._default_envs[language] = _environment(
                jinja2.ChoiceLoader([prefixed, defaults]), translations
            )
        self._check_overrides()

    def _translations(self, language: str) -> gettext.NullTranslations:
        chain: list[gettext.NullTranslations] = []
        if self._override_dir is not None:
            own = _catalog(self._override_dir / "locale", language)
            if own is not None:
                chain.append(own)
        shipped = _catalog(LOCALE_DIR, language)
        if shipped is not None:
            chain.append(shipped)
        if not chain:
            return gettext.NullTranslations()
        for first, then in itertools.pairwise(chain):
            first.add_fallback(then)
        return chain[0]

    def _check_overrides(self) -> None:
        """Every override template must at least compile: found at start, not by a user."""
        if self._override_dir is None:
            return
        env = self._envs[self.default_language if self.default_language in self._envs else "en"]
        problems = []
        for path in sorted(self._override_dir.glob("*.html")):
            try:
                env.get_template(path.name)
            except jinja2.TemplateSyntaxError as exc:
                problems.append(f"ui.templates_dir: {path.name} line {exc.lineno}: {exc.message}")
        if problems:
            raise ConfigError(problems)

    def render(self, name: str, context: Mapping[str, Any], language: str) -> str:
        """The page ``name`` in ``language``; the default template if the override fails."""
        env = self._envs.get(language) or self._envs["en"]
        try:
            return env.get_template(name).render(context)
        except jinja2.TemplateError as exc:
            if self._override_dir is None:
                raise  # a bug in a default template: let the tests see it
            log.error("template override %s failed, showing the default page: %s", name, exc)
            default_env = self._default_envs.get(language) or self._default_envs["en"]
            return default_env.get_template(name).render(context)
