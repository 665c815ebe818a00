"""The attack matrix and its judge, shared by the proxy-mode and forward-auth-mode tests.

Each Attack is a raw HTTP/1.1 request without credentials, sent byte for byte. The verdict
is read from what the real upstream reported (its JSON probe answer), never from the
gateway's view: the gateway may refuse (4xx, or a redirect to its login), or the upstream
may serve a NON-protected resource, executing the request line's method and reading no
value the client chose for an identity, method-override or forwarding header.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from tests.support.real_upstreams import READ_HEADERS

PROTECTED = frozenset({"admin", "admin-host"})
# Every attacker-chosen identity/forwarding value carries one of these.
MARKERS = ("mallory", "6.6.6.6", "evil", "6666")
WWW, ADMIN = "www.example.test", "admin.example.test"
READ_TIMEOUT = 5.0  # seconds for a whole reply (every server here closes after one)


@dataclass(frozen=True)
class Attack:
    """One raw request: `target` as written on the request line, extra header lines."""

    id: str
    target: str
    method: str = "GET"
    host: str | None = "127.0.0.1"
    headers: tuple[str, ...] = ()

    def request(self, host: str | None = None) -> bytes:
        lines = [f"{self.method} {self.target} HTTP/1.1"]
        if self.host is not None:
            lines.append(f"Host: {host or self.host}")
        lines += ["Accept: application/json", "Connection: close", *self.headers]
        if self.method in ("POST", "PUT", "PATCH"):
            lines.append("Content-Length: 0")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def _paths() -> list[Attack]:
    targets = {
        "dotdot-semicolon": "/x/..;/admin/secret",
        "encoded-dotdot-semicolon": "/x/%2e%2e;/admin/secret",
        "dotdot-semicolon-parameter": "/x/..;foo=bar/admin/secret",
        "dot-semicolon-root": "/.;/admin/secret",
        "dot-semicolon": "/x/.;/admin",
        "dotdot-semicolon-root-only": "/..;/admin/secret",
        "dotdot-plain": "/x/../admin/secret",
        "dotdot-encoded": "/x/%2e%2e/admin/secret",
        "dotdot-encoded-upper": "/x/%2E%2E/admin/secret",
        "dotdot-double-encoded": "/x/%252e%252e/admin/secret",
        "dotdot-encoded-slash": "/x%2f..%2fadmin/secret",
        "dotdot-encoded-backslash": "/x/..%5cadmin/secret",
        "semicolon-on-admin": "/admin;x=1/secret",
        "semicolon-segment": "/;/admin/secret",
        "double-slash": "//admin/secret",
        "encoded-slash-prefix": "/%2fadmin/secret",
        "case-upper": "/ADMIN/secret",
        "case-title": "/Admin",
        "case-mixed": "/aDmIn/secret",
        "case-dotless-i": "/adm%C4%B1n/secret",  # Java's equalsIgnoreCase: U+0131 is i
        "case-dotted-capital-i": "/adm%C4%B0n/secret",
        "trailing-dot": "/admin./secret",
        "trailing-dot-bare": "/admin.",
        "trailing-space-encoded": "/admin%20/secret",
        "trailing-space-bare": "/admin%20",
        "trailing-tab-encoded": "/admin%09",
        "trailing-nul-encoded": "/admin%00/secret",
        "encoded-letter": "/%61dmin/secret",
        "double-encoded-letter": "/%2561dmin/secret",
        "fullwidth-percent-raw": "/\uff0561dmin/secret",
        "fullwidth-a-raw": "/\uff41dmin/secret",
        "fullwidth-a-encoded": "/%EF%BD%81dmin/secret",
        "fullwidth-solidus-encoded": "/x%EF%BC%8F..%EF%BC%8Fadmin/secret",
        "overlong-utf8-slash": "/x%c0%af..%c0%afadmin/secret",
        "admin-query-only": "/?/admin/secret",
        "fragment": "/#/../admin/secret",
        # Read by a second hop that decodes again (nginx `$uri` into Tomcat):
        "dotdot-double-encoded-mixed": "/x/.%252e/admin/secret",
        "encoded-semicolon-on-admin": "/admin%3bx/secret",
        "encoded-semicolon-bare": "/admin%3b/secret",
        "dotdot-encoded-semicolon": "/x/..%3b/admin/secret",
        "encoded-dotdot-encoded-semicolon": "/x/%2e%2e%3b/admin/secret",
        "double-encoded-semicolon": "/admin%253bx/secret",
        "double-encoded-slash-dotdot": "/x%252f..%252fadmin/secret",
    }
    return [Attack(f"path-{name}", target) for name, target in targets.items()]


def _absolute_and_hosts() -> list[Attack]:
    return [
        Attack("absolute-www-url-admin-host", f"http://{WWW}/dashboard", host=ADMIN),
        Attack("absolute-admin-url-www-host", f"http://{ADMIN}/dashboard", host=WWW),
        Attack("absolute-url-admin-path", "http://127.0.0.1/admin/secret"),
        Attack("absolute-url-dotdot-semicolon", "http://127.0.0.1/x/..;/admin/secret"),
        Attack("absolute-url-userinfo", f"http://{WWW}@{ADMIN}/dashboard", host=WWW),
        Attack("host-admin-upper", "/dashboard", host="ADMIN.example.test"),
        Attack("host-admin-trailing-dot", "/dashboard", host=ADMIN + "."),
        Attack("host-admin-port", "/dashboard", host=ADMIN + ":80"),
        Attack("host-admin-empty-port", "/dashboard", host=ADMIN + ":"),
        Attack("host-admin-upper-port", "/dashboard", host=ADMIN.upper() + ":80"),
        Attack("host-admin-two-trailing-dots", "/dashboard", host=ADMIN + ".."),
        Attack("host-admin-percent-encoded-dot", "/dashboard", host="admin%2eexample.test"),
        Attack("host-admin-leading-dot", "/dashboard", host="." + ADMIN),
        Attack("host-list-www-admin", "/dashboard", host=f"{WWW}, {ADMIN}"),
        Attack("host-duplicate", "/dashboard", host=WWW, headers=(f"Host: {ADMIN}",)),
        Attack("host-missing", "/admin/secret", host=None),
        Attack("host-bracket", "/", host="[x"),
        Attack("host-userinfo", "/dashboard", host=f"{WWW}@{ADMIN}"),
        Attack("x-forwarded-host-admin", "/dashboard", host=WWW,
               headers=(f"X-Forwarded-Host: {ADMIN}",)),
        Attack("forwarded-host-admin", "/dashboard", host=WWW,
               headers=(f"Forwarded: host={ADMIN}",)),
    ]  # fmt: skip


def _methods() -> list[Attack]:
    out = [Attack(f"policy-methods-{m.lower()}-on-public-route", "/ro/x", method=m)
           for m in ("POST", "PUT", "DELETE", "PATCH")]  # fmt: skip
    override_names = [
        "X-HTTP-Method-Override", "x-http-method-override", "X_HTTP_Method_Override",
        "X-Method-Override", "x_method_override", "X-HTTP-Method", "X_HTTP_METHOD",
    ]  # fmt: skip
    for name in override_names:
        out.append(Attack(f"override-{name}", "/ro/x", method="POST",
                          headers=(f"{name}: DELETE",)))  # fmt: skip
        out.append(Attack(f"override-{name}-public", "/x", method="POST",
                          headers=(f"{name}: DELETE",)))  # fmt: skip
    for value in ("DELETE", "delete", "PUT"):
        out.append(Attack(f"override-query-_method-{value}", f"/ro/x?_method={value}",
                          method="POST"))  # fmt: skip
    # On a route that allows POST: names a framework decodes to `_method` (qs, PHP).
    for name in (
        "_method",
        "%5Fmethod",
        "%5fmethod",
        "_%6Dethod",
        ".method",
        "%2Emethod",
        "[method",
        "_method[]",
        "_method%00",
        "?_method",
        "[_method]",
        "%5B_method%5D",
    ):
        out.append(Attack(f"override-query-{name}-on-post-route", f"/rw/x?{name}=DELETE",
                          method="POST"))  # fmt: skip
    for name in ("X-Original-URL", "X-Rewrite-URL", "x-original-url", "X_Original_URL"):
        out.append(Attack(f"rewrite-{name}", "/x", headers=(f"{name}: /admin/secret",)))
    return out


IDENTITY_NAMES = [
    "X-Auth-Request-User", "x-auth-request-user", "X_Auth_Request_User", "X_Auth-Request_User",
    "X-Api-User", "x-api-user", "X-API-USER", "X_Api_User", "X-Api_User", "x_API-user",
    "X-Forwarded-User", "X_Forwarded_User", "X-Forwarded-Email", "X-Forwarded-Groups",
    "X-Forwarded-Preferred-Username", "X-Forwarded-Access-Token",
    "Remote-User", "Remote_User", "X-Remote-User", "X-Gateway-Identity",
]  # fmt: skip
FORWARDING = {
    "X-Real-IP": "6.6.6.6", "True-Client-IP": "6.6.6.6", "X-Client-IP": "6.6.6.6",
    "X_Real_IP": "6.6.6.6", "X-Forwarded-For": "6.6.6.6",
    "X-Forwarded-Host": "evil.example.test", "X-Forwarded-Port": "6666",
    "X-Forwarded-Prefix": "/evil", "X-Forwarded-Server": "evil.example.test",
    "X-Forwarded-Proto": "evil",
    "X-Forwarded-Ssl": "on", "X-Forwarded-Protocol": "ssl", "X-Forwarded-Scheme": "https",
    "X_Forwarded_Proto": "https", "X-Url-Scheme": "https", "Front-End-Https": "on",
    "Forwarded": "for=6.6.6.6;host=evil.example.test",
}  # fmt: skip


def _spoofed() -> list[Attack]:
    out = [Attack(f"spoof-{name}", "/x", headers=(f"{name}: mallory",)) for name in IDENTITY_NAMES]
    out += [
        Attack(f"spoof-{name}-on-admin", "/admin/secret", headers=(f"{name}: mallory",))
        for name in ("X-Api-User", "X-Forwarded-User")
    ]
    out += [Attack(f"forwarding-{name}", "/x", headers=(f"{name}: {value}",))
            for name, value in FORWARDING.items()]  # fmt: skip
    out.append(Attack("spoof-all-at-once", "/x", headers=tuple(
        [f"{n}: mallory" for n in IDENTITY_NAMES] + [f"{n}: {v}" for n, v in FORWARDING.items()]
    )))  # fmt: skip
    return out


def _syntax() -> list[Attack]:
    """Odd request lines and header syntax that lenient parsers accept."""
    return [
        Attack("method-lower-delete-on-read-only", "/ro/x", method="delete"),
        Attack("method-lower-get-admin", "/admin/secret", method="get"),
        Attack("method-options-asterisk", "*", method="OPTIONS"),
        Attack("method-connect-authority", f"{ADMIN}:80", method="CONNECT", host=ADMIN),
        Attack("absolute-upper-scheme-admin", f"HTTP://{ADMIN.upper()}/dashboard", host=WWW),
        Attack("absolute-https-admin-on-http", f"https://{ADMIN}/dashboard", host=WWW),
        Attack("header-space-before-colon", "/x", headers=("X-Api-User : mallory",)),
        Attack("header-tab-before-colon", "/x", headers=("X-Forwarded-User\t: mallory",)),
        Attack("header-obs-fold", "/x", headers=("X-Note: a", " X-Api-User: mallory")),
        Attack("header-obs-fold-value", "/x", headers=("X-Forwarded-User:", " mallory")),
        Attack("header-leading-space-name", "/x", headers=(" X-Api-User: mallory",)),
    ]


def _gateway_errors() -> list[Attack]:
    return [
        Attack("login-rd-bracket", "/_gateway/login?rd=https://%5B"),
        Attack("login-rd-fullwidth-solidus", "/_gateway/login?rd=https://x%EF%BC%8Fy"),
        Attack("login-rd-backslash", "/_gateway/login?rd=https:/%5Cevil.test"),
    ]  # fmt: skip


ATTACKS: list[Attack] = [*_syntax(), *_paths(), *_absolute_and_hosts(), *_methods(),
                         *_spoofed(), *_gateway_errors()]  # fmt: skip


@dataclass
class Reply:
    """A raw HTTP reply: status, headers (lower-case names), body, and the probe's JSON."""

    status: int
    headers: dict[str, str]
    body: bytes
    probe: dict[str, Any] | None = field(default=None)


async def send(port: int, request: bytes) -> Reply:
    """Send bytes as they are; read until the server closes (Connection: close)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    data = b""
    try:
        data = await asyncio.wait_for(reader.read(-1), READ_TIMEOUT)
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1]) if lines and lines[0].startswith("HTTP/") else 0
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _unchunk(body)
    probe: Any = _probe_in_headers(headers)
    if probe is None and status == 200 and body.startswith(b"{"):
        try:
            probe = json.loads(body)
        except ValueError:
            probe = None
    return Reply(status, headers, body, probe if isinstance(probe, dict) else None)


def _probe_in_headers(headers: dict[str, str]) -> dict[str, Any] | None:
    """The nginx probe's answer, which it gives in X-Probe-* response headers."""
    if "x-probe-resource" not in headers:
        return None
    names = {name.lower(): name for name in READ_HEADERS}
    read = {names.get(k[len("x-probe-read-") :], k): v
            for k, v in headers.items() if k.startswith("x-probe-read-")}  # fmt: skip
    return {"server": "nginx", "resource": headers["x-probe-resource"],
            "path": headers.get("x-probe-path"), "method": headers.get("x-probe-method"),
            "host": headers.get("x-probe-host"), "read": read}  # fmt: skip


def _unchunk(body: bytes) -> bytes:
    out, rest = b"", body
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out, rest = out + rest[:size], rest[size + 2 :]
    return out


def problems(attack: Attack, reply: Reply) -> list[str]:
    """Why this reply breaks the gateway's promise (empty: it kept it)."""
    if reply.status == 0:
        return []  # the connection was closed without an answer: nothing was served
    if reply.status >= 500:
        return [f"answered {reply.status} (an error, not a decision): {reply.body[:200]!r}"]
    served = reply.body.strip() != b""  # Caddy answers an empty 200 when no site matches
    if reply.probe is None and 200 <= reply.status < 300 and served and not _own(attack):
        return [f"answered {reply.status} with no readable probe report: {reply.body[:200]!r}"]
    if reply.status != 200 or reply.probe is None:
        return []  # refused, or redirected (to the login)
    probe = reply.probe
    found = []
    if probe.get("resource") in PROTECTED:
        found.append(f"upstream served protected resource {probe['resource']!r} "
                     f"(path {probe.get('path')!r}, host {probe.get('host')!r})")  # fmt: skip
    if str(probe.get("method")).upper() != attack.method.upper():
        found.append(f"upstream executed {probe.get('method')} for a {attack.method}")
    if attack.target.startswith("/ro/") and str(probe.get("method")).upper() != "GET":
        found.append(f"public GET-only route let {probe.get('method')} through")
    if attack.target.startswith("/rw/") and str(probe.get("method")).upper() not in (
        "GET",
        "POST",
    ):
        found.append(f"public GET/POST route let {probe.get('method')} through")
    if probe.get("scheme", "http") != "http":
        found.append(f"upstream believes the client came over {probe['scheme']}")
    read = probe.get("read", {})
    chosen = {k: v for k, v in read.items() if any(m in v for m in MARKERS)}
    if chosen:
        found.append(f"upstream read client-chosen values {chosen}")
    forwarded_host = read.get("X-Forwarded-Host", "")
    if "," in forwarded_host or "@" in forwarded_host:
        found.append(f"upstream read a forged X-Forwarded-Host {forwarded_host!r}")
    return found


def _own(attack: Attack) -> bool:
    """A request for the gateway's own endpoints (no upstream behind them)."""
    return attack.target.startswith("/_gateway/")


def verdict(attack: Attack, reply: Reply, where: str) -> str:
    return f"{where}: {attack.request()!r} -> {reply.status}: {reply.probe or reply.body[:200]!r}"
