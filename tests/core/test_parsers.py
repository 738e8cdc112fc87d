"""Header parsing: werkzeug's cookie, `Accept` and `Accept-Language` parsers, and the one
place that tells a browser from an API client."""

from __future__ import annotations

import random

import pytest
from werkzeug.sansio.http import parse_cookie

from dingmw.core.http import cookie_value, parse_cookies
from dingmw.core.responses import choose_language
from dingmw.core.routes import prefers_html, wants_html
from dingmw.identity import Identity

from .helpers import body_json, make_core, responded, web_request

# Cookies ------------------------------------------------------------------------------


def test_a_quoted_value_may_hold_a_semicolon() -> None:
    header = 'a="x; s=evil"; s=real'
    assert cookie_value(header, "s") == "real"
    assert cookie_value(header, "a") == "x; s=evil"
    assert parse_cookies(header) == {"a": "x; s=evil", "s": "real"}


def test_a_session_cookie_hidden_in_a_quoted_value_is_not_read() -> None:
    core = make_core()
    real = Identity(unionid="u-real", flow="oauth2")
    other = Identity(unionid="u-other", flow="oauth2")
    real_value = core.sessions.issue(real, secure=False).split(";", 1)[0].partition("=")[2]
    other_value = core.sessions.issue(other, secure=False).split(";", 1)[0].partition("=")[2]
    header = f'pref="x; dingmw_session={other_value}"; dingmw_session={real_value}'
    forward = core.sessions.cached(header)
    assert forward is not None
    assert forward.identity is not None
    assert forward.identity.unionid == "u-real"


@pytest.mark.parametrize(
    ("header", "name", "value"),
    [
        ("s=1", "s", "1"),
        ("s=1; s=2", "s", "1"),
        ("as=1; s=2", "s", "2"),
        ("x=s=1; s=2", "s", "2"),
        ("s = 1 ; t=2", "s", "1"),
        ("s", "s", ""),
        ("s=", "s", ""),
        ("t=1;s=a=b", "s", "a=b"),
        ("sx=1", "s", None),
        ("", "s", None),
        ('s="quoted"', "s", "quoted"),
        ('s="a\\"b"', "s", 'a"b'),
    ],
)
def test_cookie_value(header: str, name: str, value: str | None) -> None:
    assert cookie_value(header, name) == value


def test_cookie_value_answers_what_werkzeug_answers() -> None:
    """The fast path agrees with werkzeug on random headers."""
    rng = random.Random(20240601)  # noqa: S311  # reproducible test input, not a secret
    alphabet = ["s", "st", "t", "x", "=", "=", ";", ";", "; ", " ", "\t", "1", '"', "\\", ",", "é"]
    for _ in range(20_000):
        header = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        for name in ("s", "t", "st"):
            assert cookie_value(header, name) == parse_cookie(header).get(name), (header, name)


# Accept-Language ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept_language", "lang"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        ("en-US,en;q=0.9", "en"),
        ("", "en"),
        ("fr", "en"),
        ("fr-FR,en;q=0.5,zh;q=0.9", "zh"),
        ("en;Q=0.1, zh", "zh"),  # an upper-case Q= is a quality too
        ("en;q=0.5, zh-TW;q=0.6", "zh"),
        ("en, zh", "en"),  # equal quality: the browser's order
        ("*", "en"),
        ("fr, *;q=0.5", "en"),
        ("en;q=0, *", "zh"),  # `*` is anything but what was refused
        ("zh;q=0, en;q=0, *", "en"),
        ("ZH-cn", "zh"),
    ],
)
def test_choose_language(accept_language: str, lang: str) -> None:
    assert choose_language(accept_language) == lang


# Browser or API client ------------------------------------------------------------------

CHROME = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
    "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"
)


@pytest.mark.parametrize(
    ("accept", "browser"),
    [
        (CHROME, True),
        ("text/html", True),
        ("TEXT/HTML", True),
        ("application/xhtml+xml", True),
        ("text/html;q=0", False),  # refuses HTML
        ("text/html;Q=0", False),
        ("application/json, text/html;q=0.1", False),  # prefers JSON
        ("*/*", False),  # curl, httpx, requests
        ("application/json", False),
        ("", False),
    ],
)
def test_prefers_html(accept: str, browser: bool) -> None:
    assert prefers_html(accept) is browser
    assert wants_html("GET", accept) is browser
    assert wants_html("POST", accept) is False


@pytest.mark.parametrize("accept", ["*/*", "application/json", "text/html;q=0", ""])
def test_an_api_client_gets_json_for_a_protected_page_and_for_an_error(accept: str) -> None:
    core = make_core()
    protected = responded(core.decide(web_request("/reports", accept=accept)))
    assert protected.status == 401
    assert body_json(protected)["error"] == "login_required"
    error = responded(core.decide(web_request("/dingtalk/callback", accept=accept)))
    assert error.status == 400
    assert body_json(error)["error"] == "state_missing"


def test_a_browser_gets_a_redirect_and_an_error_page() -> None:
    core = make_core()
    protected = responded(core.decide(web_request("/reports", accept=CHROME)))
    assert protected.status == 302
    error = responded(core.decide(web_request("/dingtalk/callback", accept=CHROME)))
    assert error.status == 400
    assert ("content-type", "text/html; charset=utf-8") in error.headers
