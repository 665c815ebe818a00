"""WSGI upstream for tests/differential, run by wsgiref (`python wsgi_probe.py PORT`) and by
gunicorn (`gunicorn wsgi_probe:app`). Stdlib only: the system python runs it under gunicorn.

It answers with what a typical WSGI app would act on: the resource its router picks from
PATH_INFO (case-sensitive, like Flask), or from X-Original-URL / X-Rewrite-URL when present
(IIS-style rewrite support); the method after X-HTTP-Method-Override & co. on a POST
(werkzeug's middleware, Symfony); the vhost from HTTP_HOST; and every identity/forwarding
value it reads from the environ (REMOTE_USER and HTTP_* variables: a header sent as
`X_Api_User` lands in HTTP_X_API_USER just like `X-Api-User`).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

READ = json.loads((Path(__file__).parent / "read-headers.json").read_text())
SITE = os.environ.get("PROBE_SITE", "main")  # "admin": this instance is the admin site itself
OVERRIDES = ("X-HTTP-Method-Override", "X-Method-Override", "X-HTTP-Method")


def _variable(header: str) -> str:
    return "HTTP_" + header.upper().replace("-", "_")


def resolve(environ: dict[str, Any]) -> dict[str, Any]:
    """The app's reading of the request, as a JSON-able dict."""
    path = environ.get("PATH_INFO", "")
    for rewrite in ("X-Original-URL", "X-Rewrite-URL"):
        if environ.get(_variable(rewrite)):
            path = environ[_variable(rewrite)].split("?")[0]
    method = environ.get("REQUEST_METHOD", "")
    if method == "POST":
        for header in OVERRIDES:
            if environ.get(_variable(header)):
                method = environ[_variable(header)].upper()
                break
        else:
            # A `_method` query parameter, its name decoded (as werkzeug and Django do).
            asked = parse_qs(environ.get("QUERY_STRING", "")).get("_method")
            method = asked[0].upper() if asked else method
    host = environ.get("HTTP_HOST", "")
    if SITE == "admin" or host.lower().startswith("admin."):
        resource = "admin-host"
    elif path == "/admin" or path.startswith("/admin/"):
        resource = "admin"
    else:
        resource = "public"
    read = {h: environ[_variable(h)] for h in READ if _variable(h) in environ}
    if "REMOTE_USER" in environ:
        read["REMOTE_USER"] = environ["REMOTE_USER"]
    return {"server": environ.get("SERVER_SOFTWARE", "wsgi"), "resource": resource,
            "path": path, "method": method, "host": host, "read": read,
            "scheme": environ.get("wsgi.url_scheme")}  # fmt: skip


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    body = json.dumps(resolve(environ)).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])  # fmt: skip
    return [body]


def main() -> None:
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            sys.stderr.write("wsgiref: " + format % args + "\n")

    with make_server("127.0.0.1", int(sys.argv[1]), app, handler_class=Quiet) as server:
        server.serve_forever()


if __name__ == "__main__":
    main()
