#!/usr/bin/env python3
"""Replace one generated block of docs/performance.md with the contents of a file.

    update_doc.py run|scale FILE

The block lies between `<!-- bench:NAME:begin -->` and `<!-- bench:NAME:end -->`; the
hand-written text around it (the profile, the reading of the numbers) is kept.
"""

from __future__ import annotations

import sys
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "performance.md"
SKELETON = """# Performance

## Benchmark: the gateway side by side with Apache + mod_auth_openidc

<!-- bench:run:begin -->
<!-- bench:run:end -->

## Scale: sessions, revocation, logout propagation

<!-- bench:scale:begin -->
<!-- bench:scale:end -->
"""


def main() -> None:
    name, source = sys.argv[1], Path(sys.argv[2])
    text = DOC.read_text() if DOC.exists() else SKELETON
    begin, end = f"<!-- bench:{name}:begin -->", f"<!-- bench:{name}:end -->"
    if begin not in text or end not in text:
        text = text.rstrip("\n") + f"\n\n{begin}\n{end}\n"
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    body = source.read_text().rstrip("\n")
    DOC.write_text(f"{head}{begin}\n{body}\n{end}{tail}")
    print(f"updated the {name} block of {DOC}")


if __name__ == "__main__":
    main()
