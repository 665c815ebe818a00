"""Test modules outside packages are imported by their bare name: two of one name stop
pytest's collection (the whole suite), so each must be unique."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _import_name(path: Path) -> str:
    """The module name pytest imports ``path`` under (rootdir-style, packages qualified)."""
    parts = [path.stem]
    folder = path.parent
    while (folder / "__init__.py").exists():
        parts.insert(0, folder.name)
        folder = folder.parent
    return ".".join(parts)


def test_every_test_module_has_its_own_import_name() -> None:
    """No two test files import as the same module (tests/web/test_x.py and
    tests/policy/test_x.py would, since neither directory is a package)."""
    files = [p for p in TESTS.rglob("test_*.py") if "node_modules" not in p.parts]
    names = Counter(_import_name(p) for p in files)
    assert [] == [name for name, count in names.items() if count > 1]
