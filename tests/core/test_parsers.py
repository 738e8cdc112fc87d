"""Header parsing: werkzeug's cookie, `Accept` and `Accept-Language` parsers, and the one
place that tells a browser from an API client."""

from __future__ import annotations

import random
from typing import SupportsIndex

import pytest
from werkzeug.sansio.http import parse_cookie

from dingmw.core.http import cookie_value, parse_cookies
from dingmw.core.responses import choose_language
from dingmw.core.routes import prefers_html, wants_html

from .helpers import body_json, make_core, responded, web_request

# Cookies ------------------------------------------------------------------------------


def test_werkzeug_reads_a_quoted_value_holding_a_semicolon_as_one_value() -> None:
    """For the other cookies (the login states) werkzeug's parser reads the header."""
    header = 'a="x; s=evil"; s=real'
    assert parse_cookies(header) == {"a": "x; s=evil", "s": "real"}


@pytest.mark.parametrize(
    ("header", "name", "value"),
    [
        ("s=1", "s", "1"),
        ("s=1; s=2", "s", "1"),
        ("s=1;s=2", "s", "1"),
        ("as=1; s=2", "s", "2"),
        ("x=s=1; s=2", "s", "2"),
        ("sx=1; s=2", "s", "2"),
        ("s", "s", ""),
        ("s=", "s", ""),
        ("t=1;s=a=b", "s", "a=b"),
        ("sx=1", "s", None),
        ("", "s", None),
        # The session cookie has one spelling: any other is no session at all.
        ('s="quoted"', "s", None),
        ('s="a\\"b"', "s", None),
        ('s="\\101bc"', "s", None),  # an octal escape werkzeug would decode to "Abc"
        ("s = 1 ; t=2", "s", None),
        ("s =1", "s", None),
        ("s= 1", "s", None),
        ("s=1 ; t=2", "s", None),
        ("s=1 ", "s", None),
        ('s="x"; s=2', "s", None),  # the first one wins, and it is spelt otherwise
        ("s=a,b", "s", None),
    ],
)
def test_cookie_value(header: str, name: str, value: str | None) -> None:
    assert cookie_value(header, name) == value


def test_cookie_value_is_werkzeugs_answer_for_the_headers_browsers_send() -> None:
    """`name=value` parts joined with `; ` (or `;`), values of cookie octets, names that
    repeat or contain one another: the same answer as werkzeug's."""
    rng = random.Random(20240601)  # noqa: S311  # reproducible test input, not a secret
    octets = "abcXYZ019-_.~!#$%&'()*+/:<=>?@[]^`{|}"
    for _ in range(20_000):
        parts = [
            f"{rng.choice(['s', 'st', 't', 'ts', 'x'])}="
            + "".join(rng.choice(octets) for _ in range(rng.randint(0, 6)))
            for _ in range(rng.randint(0, 5))
        ]
        header = rng.choice(["; ", ";"]).join(parts)
        for name in ("s", "t", "st"):
            assert cookie_value(header, name) == parse_cookie(header).get(name), (header, name)


def test_cookie_value_on_any_header_is_none_or_werkzeugs_plain_answer() -> None:
    """On random text, it never un-quotes or un-escapes: its answer is None, or a plain value
    written as is in the header right after `name=`, which werkzeug reads too unless a quote
    in the header makes it read the header otherwise."""
    rng = random.Random(20240602)  # noqa: S311  # reproducible test input, not a secret
    alphabet = ["s", "st", "t", "x", "=", "=", ";", ";", "; ", " ", "\t", "1", '"', "\\", ",", "é"]
    for _ in range(20_000):
        header = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        for name in ("s", "t", "st"):
            value = cookie_value(header, name)
            if not value:
                continue
            assert f"{name}={value}" in header, (header, name)
            assert not any(c in value for c in ' \t",\\;'), (header, name)
            if '"' not in header:
                assert parse_cookie(header).get(name) == value, (header, name)


def test_cookie_value_is_linear_in_a_header_that_repeats_the_name() -> None:
    """`a=1;sX;sX;…` (each a cookie of a longer name) is read in one pass: the characters it
    looks at grow with the header, not with its square (counted, not timed: a 250 KiB header
    once took seconds)."""
    looked_at = {"chars": 0}

    class Counting(str):
        __slots__ = ()

        def __getitem__(self, key: SupportsIndex | slice) -> str:
            part = str.__getitem__(self, key)
            looked_at["chars"] += len(part)
            return part

    def chars(repeats: int) -> int:
        looked_at["chars"] = 0
        assert cookie_value(Counting("a=1;" + "s_xX;" * repeats + "s_x=v"), "s_x") == "v"
        return looked_at["chars"]

    assert chars(16_000) <= 20 * chars(1_000)


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
