"""Schema errors and a best-effort Config in one pass, so `check` reports everything at once.

The keys that fail validation are pruned (a wrong value falls back to its default; an
item that cannot stand without it is dropped) until what is left validates; the rules
then run on that, with list indexes mapped back to the file's own.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from gateway.config.model import Config

_GONE = object()  # a dropped list item: kept in place so later indexes keep their meaning
_ROUNDS = 12


def did_you_mean(loc: tuple[int | str, ...]) -> str:
    """`` (did you mean `upstream`?)`` for an unknown key close to a known one, else ''."""
    from gateway.config.load import INTERNAL_PARTS

    model = model_at(tuple(p for p in loc[:-1] if p not in INTERNAL_PARTS))
    if model is None or not isinstance(loc[-1], str):
        return ""
    close = difflib.get_close_matches(loc[-1], list(model.model_fields), n=1, cutoff=0.6)
    return f" (did you mean `{close[0]}`?)" if close else ""


def model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The section model found at key path ``loc`` of the config (None past a leaf)."""
    current: Any = Config
    for part in loc:
        current = _unwrap(current, part)
        if current is None:
            return None
    model = _unwrap_model(current)
    return model


def _unwrap(annotation: Any, part: int | str) -> Any:
    model = _unwrap_model(annotation)
    if isinstance(part, str):
        if model is not None and part in model.model_fields:
            return model.model_fields[part].annotation
        args = [a for a in _options(annotation) if typing.get_origin(a) is dict]
        return typing.get_args(args[0])[1] if args else None
    lists = [a for a in _options(annotation) if typing.get_origin(a) is list]
    return typing.get_args(lists[0])[0] if lists else None


def _options(annotation: Any) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _options(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [o for arg in typing.get_args(annotation) for o in _options(arg)]
    return [annotation]


def _unwrap_model(annotation: Any) -> type[BaseModel] | None:
    for option in _options(annotation):
        if isinstance(option, type) and issubclass(option, BaseModel):
            return option
    return None


def validate_partially(raw: dict[str, Any]) -> tuple[list[str], Config | None, IndexMap]:
    """Every schema problem of ``raw``, and a Config of what validates (None if nothing)."""
    from gateway.config.load import format_path, format_validation_errors

    pruned: Any = raw
    removed: list[str] = []
    first: list[str] | None = None
    for _ in range(_ROUNDS):
        compact = _compact(pruned)
        try:
            config = Config.model_validate(compact)
        except ValidationError as exc:
            if first is None:
                first = format_validation_errors(exc)
            errors = [(_original(pruned, _user_loc(e["loc"])), e["type"]) for e in exc.errors()]
            targets = [loc[:-1] if kind == "missing" else loc for loc, kind in errors]
            if not all(targets):  # a rule of the whole file failed: nothing left to check
                return first, None, IndexMap(pruned, removed)
            for loc in targets:
                _prune(pruned, loc)
                removed.append(format_path(loc))
            continue
        return first or [], config, IndexMap(pruned, removed)
    return first or [], None, IndexMap(pruned, removed)


def _user_loc(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    from gateway.config.load import INTERNAL_PARTS

    return tuple(
        p for p in loc if p not in INTERNAL_PARTS and not (isinstance(p, str) and "[" in p)
    )


def _compact(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _compact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_compact(v) for v in value if v is not _GONE]
    return value


def _original(pruned: Any, loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """Map a loc in the compacted value back to the pruned (original-index) value."""
    out: list[int | str] = []
    node = pruned
    for part in loc:
        if isinstance(part, int) and isinstance(node, list):
            kept = [i for i, item in enumerate(node) if item is not _GONE]
            if part >= len(kept):
                return tuple(out)
            part = kept[part]
            node = node[part]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            out.append(part)
            return tuple(out)
        out.append(part)
    return tuple(out)


def _prune(root: Any, loc: tuple[int | str, ...]) -> None:
    """Remove what ``loc`` points at (a dict key, or a list item kept as a placeholder)."""
    node = root
    for part in loc[:-1]:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return  # already pruned along with its parent
    last = loc[-1]
    if isinstance(node, list) and isinstance(last, int) and last < len(node):
        node[last] = _GONE
    elif isinstance(node, dict):
        node.pop(last, None)


class IndexMap:
    """Translates key paths of the pruned Config (``routes[1]``) to the file's (``routes[2]``)."""

    _PART = re.compile(r"\[(\d+)\]|\.?([^.\[]+)")

    def __init__(self, pruned: Any, removed: list[str]) -> None:
        self._pruned = pruned
        self._removed = removed

    def pruned_under(self, section: str) -> bool:
        """Whether some key of ``section`` failed validation and was left out."""
        return any(path.startswith(section) for path in self._removed)

    def touches_pruned(self, subject: str) -> bool:
        """A finding about a key that failed validation, or about the item that held it."""
        for path in self._removed:
            if subject.startswith(path):
                return True
            if "[" in subject and path.startswith((subject + ".", subject + "[")):
                return True
        return False

    def original(self, subject: str) -> str:
        loc: list[int | str] = []
        end = 0
        for match in self._PART.finditer(subject):
            if match.start() != end:
                break
            loc.append(int(match.group(1)) if match.group(1) else match.group(2))
            end = match.end()
        if not loc or end == 0:
            return subject
        mapped = _original(self._pruned, tuple(loc))
        mapped = (*mapped, *loc[len(mapped) :])
        path = ""
        for part in mapped:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        return path + subject[end:]
