"""The gateway's exception tree; one middleware turns each branch into a response.

GatewayError                      (status 500, never shows details to the client)
├── ConfigError                   configuration invalid (start-up / reload / check)
├── UsageError                    a command-line request that cannot be answered
├── BadRequest                    400: malformed input from the client
├── MethodNotAllowed              405: the route's policy does not allow this method
├── BodyTooLarge                  413: the request body is over limits.max_body_size
│   └── FormTooLarge              413: a posted authorization response over 16 KiB
├── BodyTimeout                   408: the request body did not arrive in time
├── RateLimited                   429: too many requests from one client address
├── Unauthorized                  401: no or invalid credentials
│   └── InvalidToken              401 with RFC 6750 WWW-Authenticate
│       ├── InsufficientUserAuthentication  401, RFC 9470: step-up needed
│       └── DpopRefused           401 with an RFC 9449 `DPoP` challenge
├── Forbidden                     403: authenticated but not allowed
│   └── InsufficientScope         403 with RFC 6750 error="insufficient_scope"
├── NotFound                      404: no route
├── LoginError                    400: the login flow failed (state, provider error, token)
├── ProviderUnavailable           503: the IdP cannot be reached or answered badly
│   └── ProviderMisconfigured     502: the IdP refuses this gateway's client (an operator must fix)
├── StoreUnavailable              503: the session store cannot be reached
├── NoAuthenticator               503: a protected route has nothing to authenticate with
├── AuthorizerUnavailable         503: a route's external authorizer did not answer
└── UpstreamError                 502: the upstream refused or broke the connection
    ├── UpstreamUnreachable       502: no connection (refused, unresolvable, TLS failed)
    └── UpstreamTimeout           504: the upstream did not answer in time
"""

from __future__ import annotations


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""

    status = 500
    code = "internal_error"
    public_message = "The gateway could not handle this request."

    def __init__(self, message: str = "", *, public: str | None = None) -> None:
        super().__init__(message or self.public_message)
        if public is not None:
            self.public_message = public


class ConfigError(GatewayError):
    """The configuration is invalid; ``problems`` lists each one with its key path."""

    code = "config_error"

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class UsageError(GatewayError):
    """A command-line request that cannot be answered as asked (the message says why)."""

    code = "usage_error"


class StartupError(ConfigError):
    """The process cannot start as configured: a busy port, an unreadable key or file."""

    code = "startup_error"


class BadRequest(GatewayError):
    status = 400
    code = "bad_request"
    public_message = "The request was malformed."


class Unauthorized(GatewayError):
    status = 401
    code = "unauthorized"
    public_message = "Authentication is required."


class InvalidToken(Unauthorized):
    """A bearer token is missing, malformed, expired or unknown (RFC 6750 3.1)."""

    code = "invalid_token"
    public_message = "The access token is missing or invalid."


class InsufficientUserAuthentication(InvalidToken):
    """401: signed in, but not strongly or recently enough for the route (RFC 9470)."""

    code = "insufficient_user_authentication"
    public_message = "A stronger or more recent sign-in is required for this resource."

    def __init__(self, message: str, *, acr_values: list[str], max_age: int | None) -> None:
        super().__init__(message)
        self.acr_values = acr_values
        self.max_age = max_age


class DpopRefused(InvalidToken):
    """A DPoP-bound token without a valid proof, or a DPoP request that fails (RFC 9449 7.1).

    ``error`` is the challenge's error code: ``invalid_dpop_proof`` for a defective proof,
    ``invalid_token`` when token and proof do not belong together, None for no credentials.
    """

    code = "invalid_dpop_proof"

    def __init__(self, message: str, *, error: str | None, algorithms: tuple[str, ...]) -> None:
        super().__init__(message, public=message)
        self.error = error
        self.algorithms = algorithms


class Forbidden(GatewayError):
    status = 403
    code = "forbidden"
    public_message = "You are not allowed to access this resource."


class InsufficientScope(Forbidden):
    code = "insufficient_scope"

    def __init__(self, message: str, *, scope: str) -> None:
        super().__init__(message, public=message)
        self.scope = scope


class NotFound(GatewayError):
    status = 404
    code = "not_found"
    public_message = "No application is configured at this address."


class LoginError(GatewayError):
    status = 400
    code = "login_failed"
    public_message = "Sign-in could not be completed. Please try again."


class ProviderUnavailable(GatewayError):
    status = 503
    code = "provider_unavailable"
    public_message = "The sign-in provider is not reachable right now. Please try again shortly."


class ProviderMisconfigured(ProviderUnavailable):
    """The provider refuses the gateway itself (client id/secret, redirect URI, issuer):
    no retry by the user can fix it."""

    status = 502
    code = "provider_misconfigured"
    public_message = (
        "The sign-in service is misconfigured; this is not a problem with your account. "
        "Please contact support with the request id."
    )


class StoreUnavailable(GatewayError):
    status = 503
    code = "store_unavailable"
    public_message = "The session store is not reachable right now. Please try again shortly."


class UpstreamError(GatewayError):
    status = 502
    code = "bad_gateway"
    public_message = "The application behind the gateway could not be reached."


class UpstreamUnreachable(UpstreamError):
    """No connection to the upstream could be opened (refused, DNS, TLS handshake)."""


class UpstreamTimeout(UpstreamError):
    status = 504
    code = "gateway_timeout"
    public_message = "The application behind the gateway did not answer in time."


class RateLimited(GatewayError):
    status = 429
    code = "rate_limited"
    public_message = "Too many requests; slow down."


class MethodNotAllowed(GatewayError):
    status = 405
    code = "method_not_allowed"
    public_message = "This method is not allowed here."


class BodyTooLarge(GatewayError):
    status = 413
    code = "body_too_large"
    public_message = "The request body is larger than this gateway accepts."


class AuthorizerUnavailable(GatewayError):
    """503: a route's external authorizer did not answer (in time): refused, fail closed."""

    status = 503
    code = "authorizer_unavailable"
    public_message = "The authorization service is unavailable. Please try again later."


class BodyTimeout(GatewayError):
    """listen.body_timeout (gateway endpoints) or limits.body_idle_timeout (proxied) passed."""

    status = 408
    code = "body_timeout"
    public_message = "The request body did not arrive in time."


class FormTooLarge(BodyTooLarge):
    """A posted authorization response (form_post) larger than any real one."""


class NoAuthenticator(GatewayError):
    """A non-public route with nothing to authenticate its callers: fail closed."""

    status = 503
    code = "no_authenticator"
    public_message = "This application requires sign-in, but the gateway has no way to do it."
