"""A 'legacy' app with no login code: it shows the identity headers the gateway sends it."""

from __future__ import annotations

import argparse
import html

from aiohttp import web

PAGE = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Legacy app</title>
<style>body{{font-family:system-ui,sans-serif;max-width:48rem;margin:3rem auto;padding:0 1rem}}
td,th{{text-align:left;padding:.2rem .8rem;border-bottom:1px solid #ddd;font-family:monospace}}
</style></head><body><h1>Legacy app</h1>
<p>This app has no sign-in code. The gateway in front of it signed you in and sent:</p>
<table><tr><th>header</th><th>value</th></tr>{rows}</table>
<p id="user">Signed in as <b id="email">{email}</b></p>
<p><a href="/_gateway/logout" id="logout">Sign out</a> ·
<a href="/_gateway/userinfo">/_gateway/userinfo</a></p></body></html>"""
SHOWN = ("x-auth-request-", "x-forwarded-", "forwarded", "x-request-id", "x-gateway-")


async def page(request: web.Request) -> web.Response:
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>"
        for k, v in sorted(request.headers.items())
        if k.lower().startswith(SHOWN)
    )
    email = html.escape(request.headers.get("X-Auth-Request-Email", "(nobody)"))
    return web.Response(text=PAGE.format(rows=rows, email=email), content_type="text/html")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=9401)
    args = parser.parse_args()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", page)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
