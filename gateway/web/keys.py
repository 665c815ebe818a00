"""Typed keys for application and request state."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from gateway.policy.canonical import CanonicalPath
from gateway.proxy.headers import ClientView

if TYPE_CHECKING:
    from gateway.web.services import Compiled, Services

SERVICES: web.AppKey[Services] = web.AppKey("services")
VIEW: web.RequestKey[ClientView] = web.RequestKey("view", ClientView)
ROUTE_NAME: web.RequestKey[str] = web.RequestKey("route_name", str)
# The canonical path of the request target (gateway.policy.canonical), read once at the edge.
TARGET: web.RequestKey[CanonicalPath] = web.RequestKey("target", CanonicalPath)
# The config snapshot this request started with.
COMPILED: web.RequestKey[Compiled] = web.RequestKey("compiled")
