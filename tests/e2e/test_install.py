"""The README's install commands work in a clean clone, and building the package warns of nothing.

These download the dependencies from the package index (about 20 MB, half a minute), as a
new user's install does; they are marked slow.
"""

from __future__ import annotations

import email
import shlex
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
# what setuptools prints for a deprecated or malformed pyproject.toml
BUILD_WARNINGS = ("Warning", "deprecated", "!!")


def readme_block(section: str, index: int = 0) -> list[str]:
    """The command lines (comments dropped) of the `index`-th sh block of a README section."""
    text = (ROOT / "README.md").read_text().split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    block = text.split("```sh", index + 1)[index + 1].split("```", 1)[0]
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip()]


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """A `git clone` of this repository's committed state."""
    target = tmp_path / "oidc-gateway"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(target)], check=True)
    return target


def run(command: str, cwd: Path) -> str:
    done = subprocess.run(
        ["bash", "-c", command], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_readme_install_from_a_clone(clone: Path, tmp_path: Path) -> None:
    """The README's install commands, run in a clean clone (venv path moved to tmp), give a
    working `gateway` command."""
    venv = tmp_path / "venv"
    commands = readme_block("Installing")
    assert commands[0] == "python3 -m venv /opt/gateway"
    for command in commands:
        run(command.replace("/opt/gateway", str(venv)), clone)
    version = run(f"{venv}/bin/gateway --version", tmp_path)
    assert "0.1.0" in version
    run(f"{venv}/bin/gateway config example > example.yaml", tmp_path)
    assert "public_url" in (tmp_path / "example.yaml").read_text()


def test_the_wheel_builds_without_warnings_and_declares_its_extras(clone: Path) -> None:
    """`pip wheel` as the README says prints no setuptools warning; the wheel carries the
    SPDX licence, the tested minimums and the `demo` extra apart from `test`; the README's
    install line for it resolves, uvloop (`fast`) included."""
    build, install = readme_block("Installing", 1)
    assert build.startswith("pip wheel")
    printed = run(shlex.join([sys.executable, "-m", *shlex.split(build)]), clone)
    warnings = [ln for ln in printed.splitlines() if any(w in ln for w in BUILD_WARNINGS)]
    assert not warnings, "\n".join(warnings)
    (wheel,) = (clone / "dist").glob("oidc_gateway-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = email.message_from_bytes(archive.read(name))
    assert metadata["License-Expression"] == "Apache-2.0"
    requires = metadata.get_all("Requires-Dist") or []
    assert "aiohttp<4,>=3.14" in requires
    assert "demo" in (metadata.get_all("Provides-Extra") or [])
    assert not [r for r in requires if r.endswith('extra == "demo"')]  # nothing but the core
    pip = [sys.executable, "-m", "pip"]
    resolved = run(shlex.join([*pip, *shlex.split(install)[1:], "--dry-run"]), wheel.parent)
    assert "uvloop" in resolved
