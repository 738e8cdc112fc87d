"""Responses the core builds: headers, JSON bodies, language choice, identity headers."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

from ..identity import Identity
from .effects import Flow, done
from .http import Headers, WebRequest, WebResponse

HTML = ("content-type", "text/html; charset=utf-8")
JSON = ("content-type", "application/json")
NO_STORE = ("cache-control", "no-store")
PAGE_HEADERS: Headers = (
    HTML,
    NO_STORE,
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
)


LANGUAGES = ("en", "zh")  # the first is the default
LANGUAGE_NAMES = {"en": "English", "zh": "中文"}


def content_security_policy(nonce: str) -> str:
    """The policy of dingmw's pages: scripts only with this response's nonce.

    `'strict-dynamic'` lets the (nonce-carrying, integrity-pinned) DingTalk widget
    script load what it needs; nothing else runs: no injected inline script, no
    `javascript:` URL, no plugin. The pages cannot be framed and their forms post
    only to this site.
    """
    return (
        f"script-src 'nonce-{nonce}' 'strict-dynamic'; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'; form-action 'self'"
    )


def page_headers(nonce: str) -> Headers:
    return (*PAGE_HEADERS, ("content-security-policy", content_security_policy(nonce)))


def choose_language(accept_language: str) -> str:
    """`zh` or `en`, whichever `Accept-Language` prefers (English when it names neither).

    Parsed by werkzeug (quality values in any case, `*`); any `zh-*` tag is
    Chinese, any `en-*` English; `*` is the first language not refused with `q=0`.
    """
    if not accept_language:
        return LANGUAGES[0]
    parsed = parse_accept_header(accept_language, LanguageAccept)
    refused = {_primary(tag) for tag, q in parsed if q <= 0}
    for tag, q in parsed:
        if q <= 0:
            continue
        if tag == "*":
            for lang in LANGUAGES:
                if lang not in refused:
                    return lang
            continue
        primary = _primary(tag)
        if primary in LANGUAGES:
            return primary
    return LANGUAGES[0]


def _primary(tag: str) -> str:
    return tag.split("-", 1)[0].split("_", 1)[0].lower()


def header_value(text: str) -> str:
    """ASCII as is; anything else as an RFC 8187 ext-value (`UTF-8''%E5%BC%A0...`)."""
    if text.isascii() and text.isprintable():
        return text
    return "UTF-8''" + quote(text, safe="")


def identity_headers(identity: Identity) -> Headers:
    """The `X-DingTalk-*` headers `/auth` returns for nginx `auth_request`."""
    headers = [("x-dingtalk-unionid", header_value(identity.unionid))]
    for name, value in (
        ("x-dingtalk-userid", identity.userid),
        ("x-dingtalk-name", identity.name or identity.nick),
        ("x-dingtalk-email", identity.email),
    ):
        if value:
            headers.append((name, header_value(value)))
    if identity.dept_ids:
        headers.append(("x-dingtalk-dept-ids", ",".join(str(d) for d in identity.dept_ids)))
    return tuple(headers)


def redirect_to_next(
    req: WebRequest, identity: Identity, next_path: str, headers: Headers
) -> Flow[WebResponse]:
    """The default end of a login: 302 to the page the person wanted."""
    return done(WebResponse(status=302, headers=(("location", next_path), NO_STORE, *headers)))


def json_response(status: int, data: Mapping[str, Any], headers: Headers = ()) -> WebResponse:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return WebResponse(status=status, headers=(JSON, NO_STORE, *headers), body=body)


def unauthorized(login_url: str) -> WebResponse:
    """The 401 an API caller gets without a session (CONTRACT §4)."""
    return json_response(401, {"error": "login_required", "login_url": login_url})
