#!/usr/bin/env python3
"""Write the OP's static clients and the gateway configs for the benchmark (JSON is YAML).

    configs.py clients FILE
    configs.py gateway FILE --port P --store redis|memory [--workers N] [--cache-ttl S]

Ports and credentials come from the environment that bench/common.sh sets up.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

ENV = os.environ


def _port(name: str) -> int:
    return int(ENV[name])


def _url(port_name: str) -> str:
    return f"http://127.0.0.1:{_port(port_name)}"


def clients() -> list[dict[str, Any]]:
    """One confidential client for Apache and the benchmarked gateways, one for scale.sh."""
    gw_ports = ("GW_PORT", "GW_MEM_PORT")
    bench = {
        "client_id": ENV["CLIENT_ID"],
        "client_secret": ENV["CLIENT_SECRET"],
        "token_endpoint_auth_method": "client_secret_basic",
        "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
        "response_types": ["code"],
        "redirect_uris": [_url("APACHE_PORT") + "/redirect_uri"]
        + [_url(p) + "/_gateway/callback" for p in gw_ports],
        "post_logout_redirect_uris": [_url("APACHE_PORT") + "/plain/"],
    }
    # scale.sh: two gateways on one redis; the OP's back-channel logout goes to B only,
    # so a session made through A must end on A through the shared store and pub/sub.
    scale = {
        **bench,
        "client_id": ENV["SCALE_CLIENT_ID"],
        "redirect_uris": [_url(p) + "/_gateway/callback" for p in ("GW_A_PORT", "GW_B_PORT")],
        "post_logout_redirect_uris": [_url("GW_A_PORT") + "/_gateway/logged-out"],
        "backchannel_logout_uri": _url("GW_B_PORT") + "/_gateway/backchannel-logout",
        "backchannel_logout_session_required": True,
    }
    return [bench, scale]


def gateway(
    port: int, store: str, workers: int, client_id: str, cache_ttl: float, redis_db: int
) -> dict[str, Any]:
    """Routes: /plain/ public, /api/ JWT, /api-opaque/ introspection, / login."""
    upstream = _url("UPSTREAM_PORT")
    issuer = _url("OP_PORT")
    secret = ENV["CLIENT_SECRET"]
    return {
        "listen": {"host": "127.0.0.1", "port": port, "workers": workers},
        "logging": {"access_log": False, "level": "warning"},
        "routes": [
            {
                "name": "plain",
                "path": "/plain/",
                "upstream": upstream,
                "auth": "public",
                "strip_prefix": True,
            },
            {
                "name": "api",
                "path": "/api/",
                "upstream": upstream,
                "auth": "bearer",
                "strip_prefix": True,
            },
            {
                "name": "api-opaque",
                "path": "/api-opaque/",
                "upstream": upstream,
                "auth": "bearer",
                "strip_prefix": True,
            },
            {"name": "app", "path": "/", "upstream": upstream, "auth": "login"},
        ],
        "providers": [
            {
                "name": "op",
                "issuer": issuer,
                "client_id": client_id,
                "client_secret": secret,
                "scopes": ["openid", "email", "profile", "groups"],
                "allow_insecure_http": True,
                "allow_private_network": True,
            }
        ],
        "sessions": {
            "store": store,
            "redis": {
                "url": f"redis://127.0.0.1:{_port('REDIS_PORT')}/{redis_db}",
                "key_prefix": "gw:",
            },
            "secrets": [ENV["SESSION_SECRET"]],
            "cookie_secure": False,
            "cache_ttl": cache_ttl,
        },
        "bearer": {
            "issuers": [
                {
                    "issuer": issuer,
                    "audiences": ["urn:test:api"],
                    "introspection": {"client_id": ENV["CLIENT_ID"], "client_secret": secret},
                    "allow_insecure_http": True,
                    "allow_private_network": True,
                }
            ]
        },
        # scale.py revokes through B's main port (loopback only, a measuring setup)
        "admin": {"token": ENV["ADMIN_TOKEN"], "public": True},
        "metrics": {"listen": None},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="what", required=True)
    sub.add_parser("clients").add_argument("file")
    gw = sub.add_parser("gateway")
    gw.add_argument("file")
    gw.add_argument("--port", type=int, required=True)
    gw.add_argument("--store", choices=("redis", "memory"), required=True)
    gw.add_argument("--workers", type=int, default=2)
    gw.add_argument("--client-id", default=ENV.get("CLIENT_ID", ""))
    gw.add_argument("--cache-ttl", type=float, default=2.0)
    gw.add_argument("--redis-db", type=int, default=0)
    gw.add_argument("--trusted-proxy", action="append", default=[], help="CIDR (forward-auth)")
    args = parser.parse_args()
    if args.what == "clients":
        data: Any = clients()
    else:
        data = gateway(
            args.port, args.store, args.workers, args.client_id, args.cache_ttl, args.redis_db
        )
        if args.trusted_proxy:
            data["trusted_proxies"] = args.trusted_proxy
    with open(args.file, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
