"""Page translations with Babel: extract the templates' messages into gateway.pot, merge
them into each language's gateway.po, compile the gateway.mo files the gateway reads.

    python scripts/translations.py            # update and compile every language
    python scripts/translations.py --init xx  # start language xx, then translate its .po
    python scripts/translations.py --check    # exit 1 if a .pot/.po/.mo is out of date
"""

from __future__ import annotations

import argparse
import datetime
import io
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[1]
PAGES = ROOT / "gateway" / "web" / "pages"
LOCALE = PAGES / "locale"
METHODS = [("**.html", "jinja2.ext:babel_extract")]
STABLE_DATE = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
OPTIONS = {"**.html": {"extensions": "jinja2.ext.i18n", "trimmed": "false"}}


def extract() -> Catalog:
    catalog = Catalog(project="oidc-gateway", domain="gateway")
    for _file, _line, message, comments, context in extract_from_dir(
        PAGES / "templates", method_map=METHODS, options_map=OPTIONS
    ):
        catalog.add(message, None, auto_comments=comments, context=context)
    return catalog


def po_text(catalog: Catalog) -> bytes:
    out = io.BytesIO()
    write_po(out, catalog, omit_header=True, no_location=True, sort_output=True, width=100)
    return out.getvalue()


def mo_bytes(catalog: Catalog) -> bytes:
    # Fixed dates: the .mo header would otherwise change on every run.
    catalog.creation_date = catalog.revision_date = STABLE_DATE
    out = io.BytesIO()
    write_mo(out, catalog)
    return out.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--init", metavar="LANG", help="start a new language")
    parser.add_argument("--check", action="store_true", help="only report stale files")
    args = parser.parse_args()
    template = extract()
    wanted: dict[Path, bytes] = {LOCALE / "gateway.pot": po_text(template)}
    if args.init:
        (LOCALE / args.init / "LC_MESSAGES").mkdir(parents=True, exist_ok=True)
        path = LOCALE / args.init / "LC_MESSAGES" / "gateway.po"
        if not path.exists():
            path.write_bytes(po_text(Catalog(locale=args.init, domain="gateway")))
    for po_path in sorted(LOCALE.glob("*/LC_MESSAGES/gateway.po")):
        language = po_path.parent.parent.name
        with po_path.open("rb") as handle:
            catalog = read_po(handle, locale=language)
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        wanted[po_path] = po_text(catalog)
        wanted[po_path.with_suffix(".mo")] = mo_bytes(catalog)
        missing = [m.id for m in catalog if m.id and not m.string]
        if missing:
            print(f"{language}: {len(missing)} untranslated: {missing[:3]}...", file=sys.stderr)
    stale = [p for p, data in wanted.items() if not p.exists() or p.read_bytes() != data]
    if args.check:
        for path in stale:
            print(f"out of date: {path.relative_to(ROOT)}", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.write_bytes(wanted[path])
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
