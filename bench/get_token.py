#!/usr/bin/env python3
"""An access token from the bench OP by client_credentials (client_secret_basic), stdlib only.

    get_token.py --kind jwt      # RFC 9068 JWT for resource urn:test:api
    get_token.py --kind opaque   # opaque token (resource urn:test:api-opaque, aud urn:test:api)

Prints only the token.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import urllib.parse
import urllib.request

RESOURCES = {"jwt": "urn:test:api", "opaque": "urn:test:api-opaque"}


def token(kind: str, op_url: str, client_id: str, secret: str, scope: str = "api:read") -> str:
    form = {"grant_type": "client_credentials", "scope": scope, "resource": RESOURCES[kind]}
    basic = base64.b64encode(
        f"{urllib.parse.quote(client_id, safe='')}:{urllib.parse.quote(secret, safe='')}".encode()
    ).decode()
    req = urllib.request.Request(
        op_url.rstrip("/") + "/token",
        data=urllib.parse.urlencode(form).encode(),
        headers={"Authorization": f"Basic {basic}"},
    )
    with urllib.request.urlopen(req, timeout=15) as resp:
        return str(json.load(resp)["access_token"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--kind", choices=sorted(RESOURCES), default="jwt")
    ap.add_argument("--op", default=f"http://127.0.0.1:{os.environ.get('OP_PORT', '9201')}")
    ap.add_argument("--client-id", default=os.environ.get("CLIENT_ID", "bench-rp"))
    ap.add_argument("--client-secret", default=os.environ.get("CLIENT_SECRET", ""))
    args = ap.parse_args()
    print(token(args.kind, args.op, args.client_id, args.client_secret))


if __name__ == "__main__":
    main()
