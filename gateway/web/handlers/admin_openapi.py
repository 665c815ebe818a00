"""The OpenAPI 3.1 description of the admin endpoints, served at {prefix}/admin/openapi.json."""

from __future__ import annotations

from typing import Any

_SESSION = {
    "type": "object",
    "required": ["id", "provider", "issuer", "sub", "sid", "created_at", "expires_at"],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string", "description": "First 12 characters of the session handle."},
        "provider": {"type": "string", "description": "Name of the provider signed in with."},
        "issuer": {"type": "string"},
        "sub": {"type": "string", "description": "The user's subject at the provider."},
        "sid": {"type": ["string", "null"], "description": "The provider's session id."},
        "created_at": {"type": "number", "description": "Sign-in time, epoch seconds."},
        "expires_at": {"type": "number", "description": "Absolute end, epoch seconds."},
    },
}
_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema or {"type": "string"}}  # fmt: skip


_ERRORS = {
    "400": _json({"$ref": "#/components/schemas/Error"}, "Bad parameters."),
    "401": _json({"$ref": "#/components/schemas/Error"}, "Admin token missing or wrong."),
    "429": _json({"$ref": "#/components/schemas/Error"}, "Too many wrong tokens."),
    "503": _json({"$ref": "#/components/schemas/Error"}, "The session store is unavailable."),
}


def admin_openapi(prefix: str) -> dict[str, Any]:
    """The document for a gateway whose endpoints live under ``prefix``."""
    base = prefix.rstrip("/") + "/admin"
    listing = {
        "type": "object",
        "required": ["sessions"],
        "properties": {
            "sessions": {"type": "array", "items": {"$ref": "#/components/schemas/Session"}},
            "next_cursor": {"type": ["string", "null"],
                            "description": "With all=true: pass as cursor for the next page; "
                            "null on the last page."},
        },
    }  # fmt: skip
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "oidc-gateway admin API",
            "version": "1",
            "description": "Served on the internal listener (metrics.listen) when admin.token "
            "is set. Every operation needs `Authorization: Bearer <admin.token>`.",
        },
        "components": {
            "securitySchemes": {"adminToken": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Session": _SESSION, "Error": _ERROR},
        },
        "security": [{"adminToken": []}],
        "paths": {
            f"{base}/sessions": {
                "get": {
                    "operationId": "listSessions",
                    "summary": "Live sessions of a user (sub), a provider session (sid), or all.",
                    "parameters": [
                        _query("sub", "The user's subject; give sub, sid or all."),
                        _query("sid", "The provider's session id."),
                        _query("provider", "Only this provider (default: every provider)."),
                        _query(
                            "all",
                            "true: every session, a page at a time.",
                            {"type": "string", "enum": ["true", "1"]},
                        ),
                        _query(
                            "limit",
                            "Page size with all=true (1-1000, default 100).",
                            {"type": "integer", "minimum": 1, "maximum": 1000},
                        ),
                        _query("cursor", "next_cursor of the previous page."),
                    ],
                    "responses": {"200": _json(listing, "The sessions found."), **_ERRORS},
                }
            },
            f"{base}/sessions/revoke": {
                "post": {
                    "operationId": "revokeSessions",
                    "summary": "End every session of a user or provider session.",
                    "requestBody": {
                        "required": True,
                        "content": {
                            media: {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "sub": {"type": "string"},
                                        "sid": {"type": "string"},
                                        "provider": {"type": "string"},
                                    },
                                    "oneOf": [{"required": ["sub"]}, {"required": ["sid"]}],
                                }
                            }
                            for media in ("application/json", "application/x-www-form-urlencoded")
                        },
                    },
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["revoked"],
                                "properties": {"revoked": {"type": "integer", "minimum": 0}},
                            },
                            "How many sessions ended.",
                        ),
                        **_ERRORS,
                    },
                }
            },
        },
    }
