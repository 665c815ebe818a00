"""The layer rule of docs/architecture.md: a module imports only from layers before its own."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "gateway"
# docs/architecture.md, top to bottom: each may import from its own row and those above.
LAYERS = [
    {"types", "errors", "secret", "__init__"},
    {"config"},
    {"crypto", "log", "audit", "metric_batch", "metrics", "tracing"},
    {"idp"},
    {"sessions"},
    {"policy"},
    {"providers"},
    {"login", "tokens"},
    {"proxy"},
    {"web"},
    {"cli", "__main__"},
]


def layer_of(part: str) -> int:
    return next(i for i, names in enumerate(LAYERS) if part in names)


def gateway_imports(path: Path) -> set[str]:
    """Top-level gateway parts a module imports at run time (TYPE_CHECKING blocks aside)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "gateway" and len(parts) > 1:
                found.add(parts[1])
    return found


def test_every_module_imports_only_earlier_layers() -> None:
    """No module reaches into a later layer (e.g. policy importing web)."""
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        own = relative.parts[0].removesuffix(".py")
        for imported in gateway_imports(path):
            if layer_of(imported) > layer_of(own):
                problems.append(f"gateway/{relative} imports gateway.{imported}")
    assert [] == problems
