"""Neutral request and response types that cross the core's boundary."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from urllib.parse import parse_qsl, quote

from werkzeug.sansio.http import parse_cookie

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
    """The value of cookie `name` in a `Cookie` header, or None (the first one wins).

    The answer is `werkzeug.sansio.http.parse_cookie(header).get(name)`. This
    runs on every request not yet in the session cache, so the common case is
    read without building a dict: when the cookie is a `name=token` part and
    everything before it is plain (`a=1; b=2`: no quote, tab, stray space or
    nameless part), werkzeug's grammar there is a split at `;` and the first
    `=`. Anything else goes to werkzeug itself (a quoted value may hold `;`).
    `tests/core/test_parsers.py` compares the two on many random headers.
    """
    start = header.find(name)
    if start < 0:
        return None  # every key werkzeug finds is a substring of the header
    while start >= 0:
        after = start + len(name)
        if (start == 0 or header[start - 1] == ";" or header[start - 2 : start] == "; ") and _plain(
            header[:start]
        ):
            if after == len(header) or header[after] == ";":
                return ""
            if header[after] == "=":
                end = header.find(";", after)
                value = header[after + 1 : end] if end >= 0 else header[after + 1 :]
                if '"' not in value and " " not in value and "\t" not in value:
                    return value
                break
        start = header.find(name, after)
    return parse_cookie(header).get(name)


def _plain(prefix: str) -> bool:
    """No quote, no tab, a space only after `;`, no part starting with `=`."""
    if not prefix:
        return True
    joined = prefix.replace("; ", ";")
    return not (
        " " in joined or "\t" in joined or '"' in joined or ";=" in joined or joined[0] == "="
    )


def parse_cookies(header: str) -> dict[str, str]:
    """Every cookie of a `Cookie` header (werkzeug's parser; the first one wins)."""
    cookies: dict[str, str] = {}
    for key, value in parse_cookie(header).items(multi=True):
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
    """A `Set-Cookie` value: always HttpOnly and SameSite=Lax; `max_age=0` deletes.

    A `__Host-` or `__Secure-` name is always `Secure` (browsers refuse it otherwise).
    """
    secure = secure or name.startswith(("__Host-", "__Secure-"))
    parts = [f"{name}={value}", f"Path={path}", f"Max-Age={max_age}"]
    if max_age == 0:
        parts.append("Expires=Thu, 01 Jan 1970 00:00:00 GMT")
    if domain:
        parts.append(f"Domain={domain}")
    if secure:
        parts.append("Secure")
    parts += ["HttpOnly", "SameSite=Lax"]
    return "; ".join(parts)
