"""One configured provider as the login flow uses it: URLs, code exchange, userinfo."""

from __future__ import annotations

import logging
import string
import time
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from gateway.config.model import Provider
from gateway.errors import LoginError, ProviderUnavailable
from gateway.idp.discovery import MetadataSource, ProviderMetadata
from gateway.idp.http import display_url, fetch_json
from gateway.idp.jwks import JwksCache
from gateway.login.client_auth import ClientAuthenticator
from gateway.login.id_token import validate_id_token
from gateway.login.token_endpoint import TokenEndpoint
from gateway.providers import ApiAccess, profile_for
from gateway.types import TokenSet

DEFAULT_ID_TOKEN_ALGS = ("RS256",)


log = logging.getLogger("gateway.login")


class ProviderClient:
    """Talks to one provider for the login flow; metadata and keys are cached."""

    def __init__(self, config: Provider, session: aiohttp.ClientSession) -> None:
        self.config = config
        self.name = config.name
        self.label = config.label or config.name
        self.profile = profile_for(config)
        self.metadata = MetadataSource.for_provider(
            config, session, issuer_matches=self.profile.discovery_issuer_matches
        )
        self.api = ApiAccess(session, self.metadata.guard, config.timeout)
        self.jwks = JwksCache(self._jwks_uri, session, self.metadata.guard)
        self._session = session
        self._tokens = TokenEndpoint(
            session, self.metadata.guard, ClientAuthenticator.for_provider(config), config.timeout
        )

    async def _jwks_uri(self) -> str:
        meta = await self.metadata.get()
        if not meta.jwks_uri:
            raise ProviderUnavailable(f"provider {self.name} publishes no jwks_uri")
        return meta.jwks_uri

    async def authorization_url(
        self,
        *,
        redirect_uri: str,
        state: str,
        nonce: str,
        verifier: str | None,
        prompt: str | None = None,
    ) -> str:
        meta = await self.metadata.get()
        if not meta.authorization_endpoint:
            raise ProviderUnavailable(f"provider {self.name} has no authorization endpoint")
        params = {
            "response_type": "code",
            "client_id": self.config.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(self.config.scopes),
            "state": state,
        }
        if self.profile.uses_id_token:
            params["nonce"] = nonce  # OAuth 2.0 servers (GitHub) refuse or ignore it
        if verifier is not None:
            params["code_challenge"] = create_s256_code_challenge(verifier)
            params["code_challenge_method"] = "S256"
        params.update(self.profile.authorize_params())
        if prompt is not None:
            params["prompt"] = prompt  # this login asks for it, over extra_auth_params
        for key, value in self.config.extra_auth_params.items():
            params.setdefault(key, value)
        separator = "&" if "?" in meta.authorization_endpoint else "?"
        # The parameter names only: state, nonce and the challenge stay out of the logs.
        log.debug(
            "authorize redirect",
            extra={"provider": self.name, "url": display_url(meta.authorization_endpoint),
                   "redirect_uri": redirect_uri, "scope": params["scope"],
                   "parameters": sorted(params)},
        )  # fmt: skip
        return meta.authorization_endpoint + separator + urlencode(params)

    async def complete(
        self, code: str, redirect_uri: str, verifier: str | None, nonce: str
    ) -> tuple[TokenSet, dict[str, Any]]:
        """Exchange the code; return the tokens and the validated, merged claims."""
        meta = await self.metadata.get()
        if not meta.token_endpoint:
            raise ProviderUnavailable(f"provider {self.name} has no token endpoint")
        tokens = await self._tokens.exchange_code(meta.token_endpoint, code, redirect_uri, verifier)
        if self.profile.uses_id_token:
            claims = await self._claims_from_id_token(meta, tokens, nonce)
        else:
            claims = await self.profile.identity_from_api(self.api, tokens)
            self.profile.check_identity(claims)
        for key, value in tokens.extra.items():
            claims.setdefault(key, value)
        claims = await self.profile.resolve_claims(self.api, tokens, claims)
        return tokens, self.profile.canonical_claims(claims)

    async def _claims_from_id_token(
        self, meta: ProviderMetadata, tokens: TokenSet, nonce: str
    ) -> dict[str, Any]:
        if not tokens.id_token:
            raise LoginError("the provider returned no id_token (is 'openid' in scopes?)")
        claims = await self.validate_id_token(tokens.id_token, nonce=nonce, meta=meta)
        # On the signed claims alone: userinfo and token-response fields only fill gaps,
        # so a gap (no `hd`, no `tid`) must not be fillable from them.
        self.profile.check_identity(claims)
        if self.config.fetch_userinfo and (
            meta.userinfo_endpoint or self.config.endpoints.userinfo
        ):
            info = await self.userinfo(meta, tokens)
            if info.get("sub") != claims["sub"]:
                raise LoginError("userinfo sub differs from the id_token sub; login refused")
            claims = {**info, **claims}
        return claims

    def accepted_issuers(self, meta: ProviderMetadata) -> list[str]:
        """Every `iss` this provider's tokens and callbacks may name (the profile decides)."""
        return self.profile.id_token_issuers(meta.issuer)

    async def validate_id_token(
        self, token: str, *, nonce: str | None, meta: ProviderMetadata | None = None
    ) -> dict[str, Any]:
        meta = meta or await self.metadata.get()
        algorithms = self.config.id_token_algorithms or list(
            meta.id_token_signing_alg_values_supported or DEFAULT_ID_TOKEN_ALGS
        )
        return await validate_id_token(
            token,
            jwks=self.jwks,
            issuer=self.accepted_issuers(meta),
            client_id=self.config.client_id,
            nonce=nonce,
            algorithms=algorithms,
            leeway=self.config.leeway,
            now=time.time(),
        )

    async def userinfo(self, meta: ProviderMetadata, tokens: TokenSet) -> dict[str, Any]:
        url = userinfo_url(self.config.endpoints.userinfo or meta.userinfo_endpoint or "", tokens)
        status, body = await fetch_json(
            self._session,
            url,
            guard=self.metadata.guard,
            timeout=self.config.timeout,
            headers={"Authorization": f"Bearer {tokens.access_token}"},
        )
        log.debug(
            "userinfo fetched",
            extra={"provider": self.name, "url": display_url(url), "status": status,
                   "claims": sorted(body) if status == 200 else None},
        )  # fmt: skip
        if status != 200:
            raise LoginError(f"userinfo answered HTTP {status}: {body.get('error', '')}")
        return body

    async def refresh(self, refresh_token: str) -> TokenSet:
        meta = await self.metadata.get()
        if not meta.token_endpoint:
            raise ProviderUnavailable(f"provider {self.name} has no token endpoint")
        return await self._tokens.refresh(meta.token_endpoint, refresh_token)

    async def end_session_url(
        self, id_token: str | None, post_logout_redirect_uri: str, state: str
    ) -> str | None:
        """The provider's logout URL (RP-initiated logout), or None when it has none."""
        meta = await self.metadata.get()
        return self.profile.logout_url(
            meta.end_session_endpoint, id_token, post_logout_redirect_uri, state
        )


def userinfo_url(template: str, tokens: TokenSet) -> str:
    """Fill {field} placeholders from the token response (TOKI puts the user id in the path)."""
    fields = {name for _, name, _, _ in string.Formatter().parse(template) if name}
    if not fields:
        return template
    values: dict[str, str] = {}
    for name in fields:
        value = tokens.extra.get(name)
        if value is None:
            raise LoginError(f"userinfo URL needs {{{name}}} but the token response has no {name}")
        values[name] = str(value)
    return template.format(**{k: quote(v, safe="") for k, v in values.items()})
