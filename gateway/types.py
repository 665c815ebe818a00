"""Values that flow between layers: who the caller is and what a session holds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

PrincipalKind = Literal["session", "bearer"]


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: a browser session or a bearer-token client."""

    kind: PrincipalKind
    issuer: str
    subject: str
    claims: dict[str, Any]
    scopes: frozenset[str] = frozenset()
    client_id: str | None = None
    session_id: str | None = None
    access_token: str | None = None
    id_token: str | None = None

    @property
    def email(self) -> str | None:
        value = self.claims.get("email")
        return value if isinstance(value, str) else None

    @property
    def groups(self) -> frozenset[str]:
        value = self.claims.get("groups")
        if isinstance(value, str):
            return frozenset(part.strip() for part in value.split(",") if part.strip())
        if isinstance(value, list):
            return frozenset(str(item) for item in value)
        return frozenset()


@dataclass(slots=True)
class TokenSet:
    """Tokens from the provider's token endpoint, plus any non-standard fields it sent."""

    access_token: str
    token_type: str = "Bearer"
    id_token: str | None = None
    refresh_token: str | None = None
    expires_at: float | None = None
    scope: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class SessionRecord:
    """What the gateway remembers about a signed-in browser (sealed before storage)."""

    provider: str
    issuer: str
    subject: str
    sid: str | None
    claims: dict[str, Any]
    tokens: TokenSet
    created_at: float
    last_seen: float
    expires_at: float
    # The provider client the login was made with: another deployment sharing the store
    # (and secret) with another client at the same provider cannot use this session.
    client_id: str = ""
    claims_read_at: float = 0.0  # when the claims were last read from the provider (0: login)


Level = Literal["ok", "warn", "error"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One verdict about the configuration: `check` prints it, `run` refuses on an error."""

    level: Level
    subject: str  # key path (``routes[2].provider``) or what was probed
    message: str

    def line(self) -> str:
        return f"{self.subject}: {self.message}" if self.subject else self.message
