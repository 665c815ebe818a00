"""Just enough HTML form parsing to drive the OP's pages with an HTTP client."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin

# devInteractions accepts any password
ANY_PASSWORD = "any-password"


@dataclass
class Form:
    id: str | None
    action: str
    method: str
    inputs: dict[str, str] = field(default_factory=dict)

    def url(self, page_url: str) -> str:
        return urljoin(page_url, self.action or page_url)


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._current: Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self._current = Form(
                id=a.get("id"),
                action=a.get("action") or "",
                method=(a.get("method") or "get").lower(),
            )
            self.forms.append(self._current)
        elif tag == "input" and self._current is not None and a.get("name"):
            name = a["name"] or ""
            self._current.inputs[name] = a.get("value") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def parse_forms(html: str) -> list[Form]:
    """Every <form> with its named <input>s (name -> value); buttons are not inputs."""
    parser = _FormParser()
    parser.feed(html)
    parser.close()
    return parser.forms


def op_form_data(form: Form, user: str, password: str) -> dict[str, str] | None:
    """The data to submit for one of the OP's interactive forms, or None if unknown.

    Handles devInteractions login (prompt=login) and consent (prompt=consent), the
    device-flow input and confirm forms, the logout confirmation (op.logoutForm) and
    form_post auto-submit pages (a single form of hidden inputs).
    """
    data = dict(form.inputs)
    prompt = data.get("prompt")
    if prompt == "login":
        data.update(login=user, password=password)
        return data
    if prompt == "consent":
        return data
    if form.id == "op.logoutForm":
        data["logout"] = "yes"
        return data
    if form.id in ("op.deviceInputForm", "op.deviceConfirmForm"):
        return data
    if form.method == "post" and data:
        return data  # form_post / auto-submit page
    return None
