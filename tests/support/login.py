"""Browser-less OpenID Connect login and logout through the gateway with aiohttp.

Use a session whose cookie jar accepts IP hosts:

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        resp = await http_login(s, gateway.url + "/app/", user="bob")

Cookies are scoped by host, not port: the OP's cookies (`_session`, `_interaction`...)
and the gateway's share the jar on 127.0.0.1. The OP remembers its own login in its
`_session` cookie, so a second `http_login` in the same session skips the login form
and signs in as the previous user again: use one ClientSession per user.
"""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

import aiohttp
from yarl import URL

from tests.support.forms import ANY_PASSWORD, op_form_data, parse_forms

HTML_ACCEPT = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"
REDIRECTS = (301, 302, 303, 307, 308)


class LoginError(AssertionError):
    """The login or logout did not go through (what happened is in the message)."""


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


async def _finish(resp: aiohttp.ClientResponse) -> aiohttp.ClientResponse:
    await resp.read()  # body cached: .text() / .json() still work after release
    return resp


async def _follow(
    session: aiohttp.ClientSession, resp: aiohttp.ClientResponse, trail: list[str]
) -> aiohttp.ClientResponse:
    """Follow redirects (as GETs, keeping cookies) until a non-redirect answer."""
    for _ in range(20):
        trail.append(f"{resp.status} {resp.method} {resp.url}")
        if resp.status not in REDIRECTS:
            return resp
        location = resp.headers.get("Location")
        if not location:
            raise LoginError(f"{resp.status} without Location at {resp.url}")
        if resp.status in (307, 308) and resp.method != "GET":
            raise LoginError(f"{resp.status} redirect of a {resp.method} at {resp.url}")
        await resp.release()
        target = urljoin(str(resp.url), location)
        resp = await session.get(
            URL(target, encoded=True), allow_redirects=False, headers={"Accept": HTML_ACCEPT}
        )
    raise LoginError("too many redirects; trail:\n  " + "\n  ".join(trail))


async def _submit(
    session: aiohttp.ClientSession,
    resp: aiohttp.ClientResponse,
    user: str,
    password: str,
    trail: list[str],
) -> aiohttp.ClientResponse | None:
    """Submit the OP form on this page (see forms.op_form_data); None if there is none."""
    html = await resp.text()
    if resp.status != 200:
        return None
    for form in parse_forms(html):
        data = op_form_data(form, user, password)
        if data is not None:
            trail.append(f"  submit form {form.id or data.get('prompt') or ''}")
            return await session.post(
                URL(form.url(str(resp.url)), encoded=True),
                data=data,
                allow_redirects=False,
                headers={"Accept": HTML_ACCEPT},
            )
    return None


async def _stuck(resp: aiohttp.ClientResponse, trail: list[str], why: str) -> LoginError:
    body = await resp.text()
    return LoginError(
        f"{why} at {resp.status} {resp.url}; trail:\n  "
        + "\n  ".join(trail)
        + f"\nbody: {body[:2000]}"
    )


async def http_login(
    session: aiohttp.ClientSession,
    start_url: str,
    user: str = "alice",
    *,
    password: str = ANY_PASSWORD,
    max_steps: int = 10,
) -> aiohttp.ClientResponse:
    """Log in as `user` starting at a protected URL; returns the final response.

    GETs `start_url` (Accept: text/html), follows the redirects to the OP, submits
    the devInteractions login form (login=user, any password) and the consent form,
    follows the code back through the gateway's callback and on to where the gateway
    sends the browser. Returns the first non-redirect response from the start URL's
    origin (body already read; `.status`, `.url`, `await .text()` / `.json()` work),
    so a 403 there (policy) is returned, not raised. Raises LoginError if the start
    URL does not redirect, or the flow gets stuck elsewhere (e.g. an OP error page).
    """
    home = _origin(start_url)
    trail: list[str] = []
    resp = await session.get(start_url, allow_redirects=False, headers={"Accept": HTML_ACCEPT})
    if resp.status not in REDIRECTS:
        raise await _stuck(resp, [f"{resp.status} GET {start_url}"], "no redirect to log in")
    for _ in range(max_steps):
        resp = await _follow(session, resp, trail)
        if _origin(str(resp.url)) == home:
            return await _finish(resp)
        submitted = await _submit(session, resp, user, password, trail)
        if submitted is None:
            raise await _stuck(resp, trail, "no form to submit")
        resp = submitted
    raise await _stuck(resp, trail, f"more than {max_steps} forms")


async def op_logout(
    session: aiohttp.ClientSession,
    end_session: str | aiohttp.ClientResponse,
) -> aiohttp.ClientResponse:
    """Confirm a logout at the OP and follow where it leads; returns the last response.

    `end_session` is the OP's end_session URL (with or without id_token_hint,
    client_id and post_logout_redirect_uri), or a response that redirects there (e.g.
    the gateway's logout answer), or the OP's already fetched confirmation page. The
    form `op.logoutForm` is submitted with logout=yes (when the OP session has no
    user, the OP serves an auto-submit form instead; that is submitted as is), which
    ends the OP session and makes the OP send back-channel logout tokens (it waits
    for them before it answers). Then redirects are followed to the post-logout
    redirect URI (or the OP's "signed out" page) and that response is returned.
    """
    trail: list[str] = []
    if isinstance(end_session, str):
        resp = await session.get(
            end_session, allow_redirects=False, headers={"Accept": HTML_ACCEPT}
        )
    else:
        resp = end_session
    resp = await _follow(session, resp, trail)
    submitted = await _submit(session, resp, "", "", trail)
    if submitted is None:
        raise await _stuck(resp, trail, "no logout form")
    return await _finish(await _follow(session, submitted, trail))
