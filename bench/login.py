#!/usr/bin/env python3
"""Browser-less OpenID Connect login through a relying party of the bench OP (stdlib only).

Starts at a protected URL of the RP (Apache + mod_auth_openidc or the gateway), follows
the redirect to the OP, submits its devInteractions login form (any password; the login
becomes the subject) and consent form, follows the code back to the RP and prints the
RP's session cookie(s) as a Cookie header value:

    login.py --rp http://127.0.0.1:9204/ --cookie-name mod_auth_openidc_session
    login.py --rp http://127.0.0.1:9210/ --cookie-name gateway_session --check

Cookies are scoped by host, not port: the OP's and the RP's cookies share one jar on
127.0.0.1, and only the ones matching --cookie-name are printed.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from html.parser import HTMLParser
from typing import Any

HTML = "text/html,application/xhtml+xml"
PASSWORD = "any-password"  # the OP's devInteractions accept any


class _Forms(HTMLParser):
    """Collects <form>s with their named <input>s."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self._cur: dict[str, Any] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self._cur = {"id": a.get("id"), "action": a.get("action") or "", "inputs": {}}
            self.forms.append(self._cur)
        elif tag == "input" and self._cur is not None and a.get("name"):
            self._cur["inputs"][a["name"]] = a.get("value") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._cur = None


def parse_forms(html: str) -> list[dict[str, Any]]:
    parser = _Forms()
    parser.feed(html)
    return parser.forms


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _open(
    opener: urllib.request.OpenerDirector, url: str, data: dict[str, str] | None = None
) -> Any:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    try:
        return opener.open(urllib.request.Request(url, data=body), timeout=15)
    except urllib.error.HTTPError as exc:
        return exc


def opener_for(jar: http.cookiejar.CookieJar) -> urllib.request.OpenerDirector:
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.addheaders = [("User-Agent", "gateway-bench-login/1.0"), ("Accept", HTML)]
    return opener


def login(rp_url: str, user: str, jar: http.cookiejar.CookieJar, password: str = PASSWORD) -> None:
    """Sign in at the RP through the OP's forms; raise SystemExit when it does not work."""
    opener = opener_for(jar)
    rp = urllib.parse.urlsplit(rp_url)
    resp = _open(opener, rp_url)
    for _ in range(10):
        url, status = resp.geturl(), resp.status
        html = resp.read().decode("utf-8", "replace")
        here = urllib.parse.urlsplit(url)
        if (here.scheme, here.netloc) == (rp.scheme, rp.netloc) and status == 200:
            return
        if status != 200:
            raise SystemExit(f"login failed: HTTP {status} at {url}\n{html[:1000]}")
        form = next(
            (f for f in parse_forms(html) if f["inputs"].get("prompt") in ("login", "consent")),
            None,
        )
        if form is None:
            raise SystemExit(f"login failed: no login/consent form at {url}\n{html[:1000]}")
        data = dict(form["inputs"])
        if data["prompt"] == "login":
            data.update(login=user, password=password)
        resp = _open(opener, urllib.parse.urljoin(url, form["action"]), data)
    raise SystemExit("login failed: too many steps")


def op_logout(op_url: str, jar: http.cookiejar.CookieJar) -> int:
    """End the OP session through its /session/end confirm form (sends back-channel logouts)."""
    opener = opener_for(jar)
    resp = _open(opener, op_url.rstrip("/") + "/session/end")
    html = resp.read().decode("utf-8", "replace")
    form = next((f for f in parse_forms(html) if f["id"] == "op.logoutForm"), None)
    if form is None:
        raise SystemExit(f"no logout form at {resp.geturl()}\n{html[:1000]}")
    data = dict(form["inputs"], logout="yes")
    resp = _open(opener, urllib.parse.urljoin(resp.geturl(), form["action"]), data)
    return int(resp.status)


def probe(url: str, cookie: str) -> int:
    """Status of GET url with only this Cookie header, redirects not followed."""
    opener = urllib.request.build_opener(_NoRedirect())
    req = urllib.request.Request(url, headers={"Cookie": cookie, "Accept": HTML})
    try:
        with opener.open(req, timeout=15) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def cookie_header(jar: http.cookiejar.CookieJar, name_pattern: str) -> str:
    name_re = re.compile(name_pattern)
    cookies = [c for c in jar if name_re.fullmatch(c.name)]
    if not cookies:
        names = sorted(c.name for c in jar)
        raise SystemExit(f"no cookie matches {name_pattern!r} after the login: {names}")
    return "; ".join(f"{c.name}={c.value}" for c in cookies)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rp", required=True, help="protected URL of the RP to start at")
    ap.add_argument("--user", default="alice", help="login name (= sub)")
    ap.add_argument("--cookie-name", required=True, help="regex of the RP's session cookie name(s)")
    ap.add_argument("--check", action="store_true", help="fail unless the cookie alone gets a 200")
    args = ap.parse_args()
    jar = http.cookiejar.CookieJar()
    login(args.rp, args.user, jar)
    header = cookie_header(jar, args.cookie_name)
    if args.check and (status := probe(args.rp, header)) != 200:
        raise SystemExit(f"check failed: the cookie alone got HTTP {status}")
    print(header)


if __name__ == "__main__":
    sys.exit(main())
