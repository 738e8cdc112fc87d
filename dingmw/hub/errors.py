"""The hub's OAuth 2.0 error (RFC 6749 §5.2) and its JSON answer."""

from __future__ import annotations

import re

from ..core.http import Headers, WebResponse
from ..core.responses import json_response


class GrantError(Exception):
    """An OAuth 2.0 error response: `error` code, description, HTTP status."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status


# RFC 6749 §5.2: error_description is printable ASCII without `"` and `\`.
_NOT_DESCRIPTION = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")


def description_text(text: str) -> str:
    """`text` in error_description's character set: `…` as `...`, anything else outside it
    (a quote, a backslash, a character a client sent) as `?`."""
    return _NOT_DESCRIPTION.sub("?", text.replace("\u2026", "..."))


def oauth_error(status: int, error: str, description: str, headers: Headers = ()) -> WebResponse:
    """`{"error", "error_description"}` with `Cache-Control: no-store` and `Pragma: no-cache`;
    a 401 also names the Basic scheme (RFC 6749 §5.2)."""
    extra: Headers = (("pragma", "no-cache"),)
    if status == 401:
        extra += (("www-authenticate", 'Basic realm="dingmw hub"'),)
    body = {"error": error, "error_description": description_text(description)}
    return json_response(status, body, (*extra, *headers))


def grant_error(exc: GrantError) -> WebResponse:
    return oauth_error(exc.status, exc.error, exc.description)
