"""Read the YAML file, fill in secrets from env and files, validate, report every problem."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from gateway.config.model import Config
from gateway.config.partial import did_you_mean
from gateway.errors import ConfigError

# Keys whose value may instead come from a file: `client_secret_file: /run/secrets/x`.
SECRET_KEYS = frozenset({"client_secret", "secret", "password", "token", "secrets"})
# pydantic's names of validation steps, which are no keys of the file.
INTERNAL_PARTS = frozenset({"function-after", "function-before", "function-plain",
                             "function-wrap", "constrained-str", "constrained-bytes",
                             "lax-or-strict", "json-or-python", "chain"})  # fmt: skip
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate the file at ``path``; raise ConfigError listing every problem."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        problem = f"cannot read config file {os.fspath(path)!r}: {exc.strerror}"
        raise ConfigError([problem]) from None
    return parse_config(text, base_dir=Path(path).resolve().parent)


def parse_config(text: str, *, base_dir: Path | None = None) -> Config:
    """Validate YAML text into a Config; raise ConfigError listing every problem."""
    problems: list[str] = []
    resolved = _resolve(yaml_mapping(text), (), problems, base_dir or Path.cwd())
    if problems:
        raise ConfigError(problems)
    try:
        return Config.model_validate(resolved)
    except ValidationError as exc:
        raise ConfigError(format_validation_errors(exc)) from None


def yaml_mapping(text: str) -> dict[str, Any]:
    """The YAML text's top-level mapping; ConfigError (one line) when it is not one."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError([f"YAML syntax error{where}: {problem}"]) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(["(top level): expected a mapping of keys to values"])
    return raw


def read_raw(path: str | os.PathLike[str]) -> tuple[dict[str, Any], list[str]]:
    """The file's mapping with secrets and env filled in, and the problems doing so."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        problem = f"cannot read config file {os.fspath(path)!r}: {exc.strerror}"
        raise ConfigError([problem]) from None
    problems: list[str] = []
    resolved = _resolve(yaml_mapping(text), (), problems, Path(path).resolve().parent)
    return resolved, problems


def format_validation_errors(exc: ValidationError) -> list[str]:
    """One line per problem: ``routes[2].upstream: not a URL``; never echoes secret input."""
    lines = []
    for err in exc.errors(include_input=False, include_url=False):
        path = format_path(err["loc"])
        message = err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
        if err["type"] == "extra_forbidden":
            message = "unknown key" + did_you_mean(err["loc"]) + " (see config.example.yaml)"
        elif err["type"] == "missing":
            message = "required key is missing"
        lines.append(f"{path}: {message}" if path else message)
    # A union (a Secret is one) reports each branch; "not an instance of Secret" says nothing
    # the user can act on when the plain-string branch explains the problem.
    paths = [line.partition(": ")[0] for line in lines]
    return [
        line
        for line, path in zip(lines, paths, strict=True)
        if not (paths.count(path) > 1 and "Input should be an instance of" in line)
    ]


def format_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in INTERNAL_PARTS or "[" in str(part):
            continue  # pydantic's internal validator names, not user keys
        else:
            out += f".{part}" if out else str(part)
    return out


def _resolve(value: Any, loc: tuple[int | str, ...], problems: list[str], base: Path) -> Any:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            key = str(key)
            stem = key.removesuffix("_file")
            if key.endswith("_file") and stem in SECRET_KEYS:
                if stem in value:
                    problems.append(f"{format_path((*loc, key))}: give {stem} or {key}, not both")
                    continue
                out[stem] = _read_secret_file(item, (*loc, key), problems, base, stem == "secrets")
            else:
                out[key] = _resolve(item, (*loc, key), problems, base)
        return out
    if isinstance(value, list):
        return [_resolve(item, (*loc, i), problems, base) for i, item in enumerate(value)]
    if isinstance(value, str):
        return _expand_env(value, loc, problems)
    return value


def _expand_env(value: str, loc: tuple[int | str, ...], problems: list[str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        found = os.environ.get(name, default)
        if found is None:
            problems.append(f"{format_path(loc)}: environment variable {name} is not set")
            return ""
        return found

    return _ENV_REF.sub(replace, value)


def _read_secret_file(
    value: Any, loc: tuple[int | str, ...], problems: list[str], base: Path, many: bool
) -> Any:
    if not isinstance(value, str):
        problems.append(f"{format_path(loc)}: expected a file path")
        return None
    path = Path(_expand_env(value, loc, problems))
    path = path if path.is_absolute() else base / path
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        problems.append(f"{format_path(loc)}: cannot read {str(path)!r}: {exc.strerror}")
        return None
    if many:
        return [line.strip() for line in text.splitlines() if line.strip()]
    return text.strip()
