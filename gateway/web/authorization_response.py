"""The authorization response as the callback receives it: in the query (GET) or, with
response_mode=form_post, in a small urlencoded form the provider's page POSTs."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qsl

from aiohttp import web
from multidict import MultiDict, MultiDictProxy

from gateway.errors import BadRequest, FormTooLarge, LoginError
from gateway.web.body_limit import too_large

# An authorization response is a handful of short fields (code, state, iss, session_state,
# error...): far below the gateway body cap, so the callback holds its own, smaller one.
MAX_FORM_POST_BYTES = 16 * 1024
FORM = "application/x-www-form-urlencoded"


async def authorization_response(request: web.Request) -> Mapping[str, str]:
    """The response's parameters; a field sent twice is refused (which one would count?)."""
    if request.method != "POST":
        return request.query
    if request.content_type != FORM:
        raise BadRequest(
            f"callback POST of type {request.content_type[:60]!r}",
            public="The sign-in response must be a urlencoded form.",
        )
    if (request.content_length or 0) > MAX_FORM_POST_BYTES:
        raise FormTooLarge(f"callback form over {MAX_FORM_POST_BYTES} bytes")
    body = await request.read()  # no more than the gateway body cap (body_limit.py)
    if len(body) > MAX_FORM_POST_BYTES:
        raise FormTooLarge(f"callback form over {MAX_FORM_POST_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("callback form is not UTF-8") from None
    form: MultiDict[str] = MultiDict(_pairs(text))
    if len(set(form.keys())) != len(form):
        raise LoginError("callback form repeats a field", public=REFUSED_TEXT)
    return MultiDictProxy(form)


def form_too_large(request: web.Request) -> web.StreamResponse:
    return too_large(request, MAX_FORM_POST_BYTES)


def _pairs(text: str) -> list[tuple[str, str]]:
    try:
        return parse_qsl(text, keep_blank_values=True, strict_parsing=False, max_num_fields=32)
    except ValueError:
        raise BadRequest("callback form has too many fields") from None


REFUSED_TEXT = "This sign-in response was refused. Please start again from the application."
