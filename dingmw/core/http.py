"""Neutral request and response types that cross the core's boundary."""

from __future__ import annotations

import dataclasses
import re
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
    """The session cookie's value in a `Cookie` header, in its one spelling; else None.

    The first cookie called `name` (a part starting the header or following `;`
    or `; `) is taken when it is `name=value` and the value is plain: no quote,
    backslash, space, tab or comma (a sealed session never holds one), up to the
    next `;` or the end. Any other spelling of that first cookie (`"value"`, an
    octal escape, `name = value`, a space after the value) is None, so a stolen
    cookie has one form only, for a log rule or a firewall to match; and a
    `name` alone is "". Other cookies (the login states) are read by werkzeug's
    parser (`parse_cookies`), which un-quotes. One pass of `str.find`s: linear in
    the header, however it repeats the name.

    For the headers browsers send (`a=1; b=2`) this is werkzeug's answer;
    `tests/core/test_parsers.py` compares them. (werkzeug also reads a quoted value
    holding `; name=…` as one value; no browser sends one, since a cookie value
    cannot hold `;`.)
    """
    size = len(name)
    start = header.find(name)
    while start >= 0:
        after = start + size
        following = header[after : after + 1]
        if following in ("=", ";", "", " ", "\t"):  # the name, not the start of a longer one
            blank = start  # the spaces and tabs before it
            while blank and header[blank - 1] in " \t":
                blank -= 1
            if not blank or header[blank - 1] == ";":  # a cookie's name: the first one wins
                spaced = header[blank:start]
                if spaced not in ("", " ") or (spaced and not blank):
                    return None  # `;  name`, ` name`: that cookie, spelt otherwise
                if following == "=":
                    end = header.find(";", after)
                    value = header[after + 1 : end] if end >= 0 else header[after + 1 :]
                    return None if _NOT_PLAIN.search(value) else value
                return "" if following in (";", "") else None  # `name =value`: spelt otherwise
        start = header.find(name, after)
    return None


_NOT_PLAIN = re.compile(r'[\s",\\]')


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
