"""A local demo: the test OIDC provider, a legacy app, and the gateway in front of it."""
