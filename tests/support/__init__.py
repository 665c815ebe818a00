"""Test support: real servers started as subprocesses, and login helpers.

Fixtures (tests/conftest.py): redis_server, oidc_provider, upstream, browser (session);
page, gateway_factory, fresh_oidc_provider, persistent_redis, http_session (function).

Typical login test:

    async def test_login(gateway_factory, oidc_provider, upstream, http_session):
        gw = gateway_factory({}, start=False)           # port known, not started
        client = oidc_provider.register_client(
            redirect_uris=[f"{gw.url}/_gateway/callback"],
            post_logout_redirect_uris=[f"{gw.url}/_gateway/logged-out"],
            backchannel_logout_uri=f"{gw.url}/_gateway/<its back-channel path>",
            backchannel_logout_session_required=True,
            grant_types=["authorization_code", "refresh_token"],
        )
        gw.config.update(routes=[...], providers=[{..., "client_id": client["client_id"],
                                                   "client_secret": client["client_secret"]}])
        gw.start()
        resp = await http_login(http_session, f"{gw.url}/app/", user="bob")

Modules: ports (free_port), processes (ManagedProcess), redis (RedisServer), op
(OidcProvider), upstream (sample app + UpstreamServer), gateway (GatewayProcess),
login (http_login, op_logout), keys (rsa_client_key for private_key_jwt), forms, browser.
"""
