"""An authenticating reverse proxy: OIDC login, bearer-token APIs, back-channel logout."""

__version__ = "0.1.0"
