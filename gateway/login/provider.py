"""One configured provider as the login flow uses it: URLs, code exchange, userinfo."""

from __future__ import annotations

import logging
import string
import time
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from gateway.config.model import Provider, StepUp
from gateway.errors import LoginError, ProviderUnavailable
from gateway.idp.discovery import MetadataSource, ProviderMetadata
from gateway.idp.http import display_url, fetch_json
from gateway.idp.jwks import JwksCache
from gateway.login.client_auth import ClientAuthenticator
from gateway.login.client_channel import ClientChannel
from gateway.login.id_token import stored_id_token_claims, validate_id_token
from gateway.login.par import PushedAuthorization, front_channel_url, par_endpoint
from gateway.login.revocation import TokenRevoker
from gateway.login.token_endpoint import TokenEndpoint
from gateway.policy.step_up import higher_acr
from gateway.providers import ApiAccess, profile_for
from gateway.types import TokenSet

DEFAULT_ID_TOKEN_ALGS = ("RS256",)
# Claims about the authentication itself: userinfo never overrides them.
PROTOCOL_CLAIMS = ("iss", "sub", "aud", "azp", "exp", "iat", "nonce", "auth_time", "acr",
                   "amr", "sid", "at_hash")  # fmt: skip
log = logging.getLogger("gateway.logout")


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
        auth = ClientAuthenticator.for_provider(config)
        channel = ClientChannel(session, self.metadata.guard, auth, config.timeout)
        self._tokens = TokenEndpoint(channel)
        self._revoker = TokenRevoker(channel)
        self._par = PushedAuthorization(channel)

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
        extra: dict[str, str] | None = None,
    ) -> str:
        """The authorization request; ``extra`` (a step-up) wins over extra_auth_params."""
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
        params.update(extra or {})
        if self.config.response_mode != "query":
            params["response_mode"] = self.config.response_mode
        for key, value in self.config.extra_auth_params.items():
            params.setdefault(key, value)
        pushed_to = par_endpoint(meta, self.config.pushed_authorization, self.name)
        if pushed_to is not None:
            request_uri = await self._par.push(pushed_to, meta.issuer, params)
            return front_channel_url(
                meta.authorization_endpoint, self.config.client_id, request_uri
            )
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
            endpoint="userinfo",
        )
        log.debug(
            "userinfo fetched",
            extra={"provider": self.name, "url": display_url(url), "status": status,
                   "claims": sorted(body) if status == 200 else None},
        )  # fmt: skip
        if status >= 500:
            raise ProviderUnavailable(f"userinfo answered HTTP {status}")
        if status != 200:
            raise LoginError(f"userinfo answered HTTP {status}: {body.get('error', '')}")
        return body

    async def claims_after_refresh(
        self,
        tokens: TokenSet,
        previous: dict[str, Any],
        subject: str,
        stored_id_token: str | None = None,
    ) -> dict[str, Any]:
        """The session's claims read again (after a refresh, or on claims_refresh_interval):
        a new id_token (validated; OIDC Core 12.2: same subject) over the userinfo answer,
        as at login. Without a new id_token, the stored one's claims are the base and
        userinfo's answer replaces what it says (protocol claims excepted), so a claim the
        provider stopped sending is gone; without either, userinfo updates the previous.

        LoginError: the provider refused (the session ends); ProviderUnavailable: it
        could not be asked."""
        meta = await self.metadata.get()
        fresh_id_token = tokens.id_token is not None
        if tokens.id_token:
            claims = await self.validate_id_token(tokens.id_token, nonce=None, meta=meta)
            if claims.get("sub") != subject:
                raise LoginError("the refreshed id_token names another subject")
        else:
            base = stored_id_token_claims(stored_id_token) if stored_id_token else {}
            claims = base if base.get("sub") == subject else dict(previous)
        if self.config.fetch_userinfo and (
            meta.userinfo_endpoint or self.config.endpoints.userinfo
        ):
            info = await self.userinfo(meta, tokens)
            if info.get("sub") != subject:
                raise LoginError("userinfo after the refresh names another subject")
            kept = {k: claims[k] for k in PROTOCOL_CLAIMS if k in claims}
            claims = {**info, **claims} if fresh_id_token else {**claims, **info, **kept}
        for key, value in tokens.extra.items():
            claims.setdefault(key, value)
        return self._keep_highest_authentication(previous, claims)

    def _keep_highest_authentication(
        self, previous: dict[str, Any], claims: dict[str, Any]
    ) -> dict[str, Any]:
        """A session keeps the highest acr it reached and its latest auth_time."""
        if "acr" in previous:
            claims["acr"] = higher_acr(previous["acr"], claims.get("acr"), self.config.acr_levels)
        times = [t for t in (previous.get("auth_time"), claims.get("auth_time"))
                 if isinstance(t, int | float) and not isinstance(t, bool)]  # fmt: skip
        if times:
            claims["auth_time"] = max(times)
        return claims

    def configured_step_up(self) -> StepUp | None:
        """acr_values / max_age set in extra_auth_params: checked at the callback too, since
        a user can strip them from the authorization URL."""
        extra = self.config.extra_auth_params
        acr = extra.get("acr_values", "").split()
        max_age = extra.get("max_age", "")
        if not acr and not max_age.isdigit():
            return None
        return StepUp(acr_values=acr, max_age=int(max_age) if max_age.isdigit() else None)

    async def refresh(self, refresh_token: str) -> TokenSet:
        meta = await self.metadata.get()
        if not meta.token_endpoint:
            raise ProviderUnavailable(f"provider {self.name} has no token endpoint")
        return await self._tokens.refresh(meta.token_endpoint, refresh_token)

    async def revoke_tokens(self, tokens: TokenSet) -> int:
        """Revoke a session's tokens (RFC 7009) if the provider has a revocation endpoint;
        failures are logged, never raised. Returns how many tokens were revoked."""
        try:
            meta = await self.metadata.get()
        except ProviderUnavailable as exc:
            log.warning("tokens not revoked: provider %s unavailable: %s", self.name, exc)
            return 0
        url = self.config.endpoints.revocation or meta.revocation_endpoint
        if not url:
            return 0
        return await self._revoker.revoke_all(url, tokens)

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
