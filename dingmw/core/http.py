"""Neutral request and response types that cross the core's boundary."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from urllib.parse import parse_qsl, quote

Headers = tuple[tuple[str, str], ...]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class WebRequest:
    """An inbound request as the adapters see it.

    `headers` has lower-case names; when a header repeats, the adapters join
    the values with ", " (cookies with "; ").
    """

    method: str
    scheme: str
    host: str
    root_path: str
    path: str
    query_string: str
    headers: Mapping[str, str]
    body: bytes = b""  # read only where a route needs it (the hub's token endpoint)

    @property
    def cookie_header(self) -> str:
        return self.headers.get("cookie", "")

    def query(self) -> dict[str, str]:
        """The query parameters; the first value wins when a name repeats."""
        params: dict[str, str] = {}
        for key, value in parse_qsl(self.query_string, keep_blank_values=True):
            params.setdefault(key, value)
        return params

    def cookies(self) -> dict[str, str]:
        return parse_cookies(self.cookie_header)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class WebResponse:
    """A complete response the adapters send as is."""

    status: int
    headers: Headers = ()
    body: bytes = b""


INTERNAL_ERROR = WebResponse(
    status=500,
    headers=(("content-type", "text/plain; charset=utf-8"), ("cache-control", "no-store")),
    body=b"dingmw: internal error (see the server log)\n",
)


def iri_to_uri(text: str) -> str:
    """Percent-encode the non-ASCII characters and spaces of a URL so it fits in a header."""
    if text.isascii() and " " not in text:
        return text
    return "".join(ch if ch.isascii() and ch != " " else quote(ch, safe="") for ch in text)


def cookie_value(header: str, name: str) -> str | None:
    """The value of cookie `name` in a `Cookie` header, or None (the first one wins)."""
    key = name + "="
    start = header.find(key)
    while start >= 0:
        if start == 0 or header[start - 1] in " ;\t":
            begin = start + len(key)
            end = header.find(";", begin)
            value = (header[begin:end] if end >= 0 else header[begin:]).strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            return value
        start = header.find(key, start + 1)
    return None


def parse_cookies(header: str) -> dict[str, str]:
    cookies: dict[str, str] = {}
    for part in header.split(";"):
        key, sep, value = part.partition("=")
        key = key.strip()
        if sep and key:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            cookies.setdefault(key, value)
    return cookies


def set_cookie(
    name: str,
    value: str,
    *,
    path: str,
    max_age: int,
    secure: bool,
    domain: str | None = None,
) -> str:
    """A `Set-Cookie` value: always HttpOnly and SameSite=Lax; `max_age=0` deletes."""
    parts = [f"{name}={value}", f"Path={path}", f"Max-Age={max_age}"]
    if max_age == 0:
        parts.append("Expires=Thu, 01 Jan 1970 00:00:00 GMT")
    if domain:
        parts.append(f"Domain={domain}")
    if secure:
        parts.append("Secure")
    parts += ["HttpOnly", "SameSite=Lax"]
    return "; ".join(parts)
