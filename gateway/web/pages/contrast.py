"""WCAG 2.1 contrast of the configured colours (the pages' text must stay readable)."""

from __future__ import annotations

from gateway.config.model import Colours, Ui

AA_NORMAL_TEXT = 4.5


def _luminance(colour: str) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(first: str, second: str) -> float:
    """The contrast ratio of two #rrggbb colours, 1 to 21."""
    high, low = sorted((_luminance(first), _luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def low_contrast(scheme: Colours) -> list[str]:
    """Each pair of a scheme that is below WCAG AA for normal text, described."""
    pairs = [
        ("text", scheme.text, "background", scheme.background),
        ("muted", scheme.muted, "background", scheme.background),
        ("primary", scheme.primary, "background", scheme.background),
        ("on_primary", scheme.on_primary, "primary", scheme.primary),
    ]
    return [
        f"{a} on {b} is {contrast(fa, fb):.1f}:1, below {AA_NORMAL_TEXT}:1 (WCAG AA)"
        for a, fa, b, fb in pairs
        if contrast(fa, fb) < AA_NORMAL_TEXT
    ]


def ui_contrast_problems(ui: Ui) -> list[tuple[str, str]]:
    """(key path, problem) for every low-contrast pair in both colour schemes."""
    return [
        (f"ui.{name}", problem)
        for name, scheme in (("colours", ui.colours), ("dark_colours", ui.dark_colours))
        for problem in low_contrast(scheme)
    ]
