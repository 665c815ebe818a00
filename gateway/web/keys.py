"""Typed keys for application and request state."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from gateway.proxy.headers import ClientView

if TYPE_CHECKING:
    from gateway.web.services import Services

SERVICES: web.AppKey[Services] = web.AppKey("services")
VIEW: web.RequestKey[ClientView] = web.RequestKey("view", ClientView)
ROUTE_NAME: web.RequestKey[str] = web.RequestKey("route_name", str)
