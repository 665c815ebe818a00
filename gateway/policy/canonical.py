"""The canonical request target: one reading of path and host that every later step uses.

Path rules (each refused case is a 400, never a guess):
- the target must be origin-form (`/...`); `#` fragments are dropped;
- `;` parameters are removed from every segment (Tomcat, Jetty and Spring ignore them);
- each segment is percent-decoded once, as UTF-8; malformed escapes, invalid UTF-8,
  an encoded `/`, a `\\`, NUL or any control character are refused;
- empty segments are merged (`//` reads as `/`, as nginx does);
- dot segments (`.`, `..`, in any encoding, `..;` included) are refused;
- the upstream receives the result re-encoded: unreserved characters and sub-delims
  plain, everything else (`;` and `%` included) as `%XX`, so it cannot read a second
  parameter or escape out of what the gateway decided on.

Besides the decoded path that routes match, `readings` lists the other paths a common
upstream may resolve the same target to: case-folded (Express, IIS; Java's
case-insensitive comparisons, for which U+0131 and U+0130 are `i`), trailing dots and
spaces trimmed (IIS, Windows), decoded a second time, and NFKC-folded (fullwidth
letters, slashes, dots and '%'), alone or combined in either order; then slashes merged
and dot segments resolved. Route matching refuses a target whose readings reach a
stricter route.
"""

from __future__ import annotations

import re
import unicodedata
from typing import NamedTuple
from urllib.parse import unquote

from gateway.errors import BadRequest

# Printable ASCII that needs no decoding and no re-encoding: the common case, one regex.
_PLAIN_PATH = re.compile(r"/[A-Za-z0-9\-._~!$&'()*+,=:@/]*")
_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
# RFC 3986 pchar without ';' (a parameter delimiter to Tomcat) and '%'.
_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,=:@")
_HOST = re.compile(
    r"(?P<host>[a-z0-9_](?:[a-z0-9_.-]{0,251}[a-z0-9_])?\.?|\[[0-9a-f:.]{2,45}\])(?::(?P<port>[0-9]{1,5}))?"
)


class PathRefused(BadRequest):
    """400: a target that cannot be canonicalised unambiguously."""

    code = "bad_path"
    public_message = "The request path was refused: it cannot be read unambiguously."


class CanonicalPath(NamedTuple):
    """A request path as the gateway reads it, and as it sends it upstream.

    A NamedTuple rather than a frozen dataclass: one is built per request, and tuple
    construction is several times cheaper.
    """

    encoded: str  # what the upstream receives
    decoded: str  # what routes match
    readings: tuple[str, ...]  # other readings of common upstreams, case kept
    folded: tuple[str, ...]  # the same, case-folded

    def readings_for(self, case_sensitive: bool) -> tuple[str, ...]:
        """The other readings an upstream may apply (case folding unless case-sensitive)."""
        return self.readings if case_sensitive else self.readings + self.folded


def _refuse(why: str, raw: str) -> PathRefused:
    # Only the path reaches the log: a query string may carry credentials.
    return PathRefused(f"path refused ({why}): {raw[:200]!r}")


def _decode_segment(segment: str, raw: str) -> str:
    if "%" in segment:
        if _ESCAPE.search(segment):
            raise _refuse("malformed percent escape", raw)
        try:
            segment = unquote(segment, errors="strict")
        except UnicodeDecodeError:
            raise _refuse("not UTF-8", raw) from None
    if "/" in segment or "\\" in segment:
        raise _refuse("an encoded slash or a backslash", raw)
    if any(ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 for ch in segment):
        raise _refuse("a control character", raw)
    if segment in (".", ".."):
        raise _refuse("a dot segment", raw)
    try:
        segment.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: bytes that were not UTF-8
        raise _refuse("not UTF-8", raw) from None
    return segment


def _encode_segment(segment: str) -> str:
    if all(ch in _SAFE for ch in segment):
        return segment
    return "".join(
        ch if ch in _SAFE else "".join(f"%{b:02X}" for b in ch.encode("utf-8")) for ch in segment
    )


def canonical_path(raw: str) -> CanonicalPath:
    """The canonical form of a raw origin-form path (no query); PathRefused if ambiguous."""
    raw = raw.partition("#")[0]
    if not raw.startswith("/"):
        raise _refuse("not an origin-form path", raw)
    if _PLAIN_PATH.fullmatch(raw) and "//" not in raw and not _has_dot_segment(raw):
        return CanonicalPath(raw, raw, *_readings(raw))
    segments = raw.split("/")[1:]
    decoded: list[str] = []
    for i, segment in enumerate(segments):
        segment = _decode_segment(segment.partition(";")[0], raw)
        if segment or i == len(segments) - 1:
            decoded.append(segment)
    text = "/" + "/".join(decoded)
    encoded = "/" + "/".join(_encode_segment(s) for s in decoded)
    return CanonicalPath(encoded, text, *_readings(text))


def _has_dot_segment(raw: str) -> bool:
    if "/." not in raw:
        return False
    segments = raw.split("/")
    return "." in segments or ".." in segments


_SLASHES = re.compile(r"/{2,}")
_NONE: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())


def _trimmed(path: str) -> str:
    """Trailing dots and spaces of each segment removed, as IIS and Windows do."""
    if not (". " in path or "./" in path or " /" in path or path.endswith((".", " "))):
        return path
    return _SLASHES.sub("/", "/".join(s.rstrip(". ") for s in path.split("/")))


def _resolved(path: str) -> str:
    """``path`` read by a next hop that decodes it: ';' parameters dropped, backslashes
    as slashes, slashes merged, dot segments resolved (never above the root)."""
    kept: list[str] = []
    for segment in path.replace("\\", "/").split("/"):
        segment = segment.partition(";")[0]
        if segment == "..":
            if kept:
                kept.pop()
        elif segment not in ("", "."):
            kept.append(segment)
    tail = "/" if path.endswith("/") and kept else ""
    return "/" + "/".join(kept) + tail


def _readings(path: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Other paths a common upstream may resolve ``path`` to: (case kept, case folded).

    A path with characters that were percent-encoded (a decoded ';', or a '%' left after
    one decoding) may meet a second hop that decodes again (nginx `$uri` into Tomcat);
    a non-ASCII path may meet a hop that NFKC-folds it (fullwidth '/', '.', '%'). Both may
    happen on one chain, in either order: each such reading, with parameters dropped,
    slashes merged and dot segments resolved, counts too.
    """
    plain = "%" not in path and ";" not in path and "?" not in path and "#" not in path
    if plain and path.isascii() and path.lower() == path and _trimmed(path) == path:
        return _NONE  # the common case on every request: nothing else to read
    bases = [path]
    for form in _forms(path):
        # A decoded or folded '?' or '#' ends the path at a hop that re-reads the target
        # (nginx `proxy_pass ...$uri`): `/admin%3Fx` reaches /admin there.
        ended = form.partition("?")[0].partition("#")[0]
        for reading in {form, ended}:
            bases += [_SLASHES.sub("/", reading), _resolved(reading)]
    kept: dict[str, None] = {}
    folded: dict[str, None] = {}
    for base in bases:
        trimmed = _trimmed(base)
        kept.update(dict.fromkeys((base, trimmed)))
        folded.update(dict.fromkeys((_folded(base), _folded(trimmed))))
    kept.pop(path, None)
    folded.pop(path, None)
    return tuple(kept), tuple(r for r in folded if r not in kept)


# Letters outside ASCII that Java's case-insensitive comparisons (equalsIgnoreCase,
# regionMatches) equate with an ASCII one, which lower() alone does not: dotless i
# (U+0131) and dotted capital I (U+0130) with i, long s (U+017F) with s (the Kelvin sign
# lower-cases to k already).
_JAVA_FOLD = str.maketrans({"\u0130": "i", "\u0131": "i", "\u017f": "s"})


def _folded(path: str) -> str:
    """``path`` as an upstream comparing case-insensitively reads it: full case folding
    (Python's casefold, Java's toUpperCase: U+00DF and U+1E9E are `ss`)."""
    return path.translate(_JAVA_FOLD).casefold()


def _forms(path: str) -> dict[str, None]:
    """``path`` and what it becomes through at most one more percent-decoding and any
    number of NFKC foldings, in any order (`/x/%E2%80%A5/%61dmin`: NFKC, then decoded)."""
    forms: dict[str, bool] = {path: False}  # form -> whether it took the extra decoding
    todo = [path]
    while todo:
        form = todo.pop()
        decoded = forms[form]
        following = []
        if not form.isascii():
            following.append((unicodedata.normalize("NFKC", form), decoded))
        if not decoded and "%" in form:
            following.append((unquote(form), True))
        for new, used in following:
            if new not in forms or (forms[new] and not used):
                forms[new] = used
                todo.append(new)
    return dict.fromkeys(forms)


def canonical_host(value: str) -> str:
    """A Host (or X-Forwarded-Host) value in canonical form: lower case, no trailing dot.

    The port stays (`example.com:8443`). Several hosts, user info, or anything that is not
    a host name or an IP literal is refused.
    """
    text = value.strip().lower()
    match = _HOST.fullmatch(text)
    if match is None or (match["port"] is not None and not 0 < int(match["port"]) < 65536):
        raise BadRequest(f"unusable host {value[:100]!r}", public="The Host header is malformed.")
    host = match["host"].rstrip(".")
    if not host:
        raise BadRequest(f"unusable host {value[:100]!r}", public="The Host header is malformed.")
    return f"{host}:{match['port']}" if match["port"] is not None else host


def host_name(host: str) -> str:
    """The name part of a canonical host, without port or IPv6 brackets."""
    if host.startswith("["):
        return host[1 : host.index("]")]
    return host.rpartition(":")[0] if ":" in host else host
