"""End to end in a real headless Chromium: an app behind dingmw (ASGI under uvicorn, WSGI under
werkzeug) and the fake DingTalk, each on its own loopback port, so the QR frame is cross-origin
and the login page's postMessage origin checks are the real thing."""

from __future__ import annotations

import contextlib
import html
import json
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
from flask import Flask
from flask import request as flask_request
from playwright.sync_api import Page, Request, Route, expect
from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import HTMLResponse, PlainTextResponse
from starlette.routing import Route as StarletteRoute

from dingmw import ASGIMiddleware, Identity, WSGIMiddleware, get_identity
from dingmw.demo import fake_settings
from dingmw.testing import LISI, ZHANGSAN

from .conftest import ContextFactory, FakeServer
from .servers import serve_asgi, serve_wsgi
from .support import FLOWS

pytestmark = pytest.mark.browser

# Screenshots for a person to look at: /tmp/dingmw-shots here, never inside the repository.
SHOTS = Path(tempfile.gettempdir()) / "dingmw-shots"
LOGIN_PATH = "/dingtalk/login"
# Where each widget stand-in points its QR frame (dingtalk-api.md §1.1 and §5).
FRAME_PATH = {
    "oauth2": "/oauth2/auth?iframe=true&",
    "sns": "/login/qrcode.htm?goto=",
    "bycode": "/login/qrcode.htm?goto=",
}
EVIL_ORIGIN = "http://evil.test"  # never resolved: Playwright answers for it
CJK = re.compile(r"[\u3400-\u9fff]")


# --- the wrapped apps: they show who the middleware says is logged in ------------------------


def whoami_page(identity: Identity | None, target: str) -> str:
    if identity is None:
        return '<!doctype html><p id="anonymous">anonymous</p>'
    fields = {
        "unionid": identity.unionid,
        "nick": identity.nick or "",
        "flow": identity.flow,
        "target": target,
    }
    rows = "".join(f'<p>{k}: <span id="{k}">{html.escape(v)}</span></p>' for k, v in fields.items())
    return (
        '<!doctype html><html><head><meta charset="utf-8"><title>private</title></head>'
        f'<body><h1 id="greeting">Hello, {html.escape(identity.display_name)}</h1>{rows}'
        "</body></html>"
    )


async def _asgi_whoami(request: StarletteRequest) -> HTMLResponse:
    query = request.url.query
    target = request.url.path + (f"?{query}" if query else "")
    return HTMLResponse(whoami_page(get_identity(request), target))


async def _asgi_health(request: StarletteRequest) -> PlainTextResponse:
    return PlainTextResponse("ok")


def asgi_whoami() -> Starlette:
    return Starlette(
        routes=[
            StarletteRoute("/health", _asgi_health),
            StarletteRoute("/{path:path}", _asgi_whoami),
        ]
    )


def flask_whoami() -> Flask:
    app = Flask("whoami", static_folder=None)

    @app.route("/", defaults={"path": ""})
    @app.route("/<path:path>")
    def whoami(path: str) -> str:
        query = flask_request.query_string.decode("latin-1")
        target = flask_request.path + (f"?{query}" if query else "")
        return whoami_page(get_identity(flask_request), target)

    return app


@dataclass(frozen=True)
class Site:
    url: str  # the app's origin, no trailing slash
    flow: str
    adapter: str


SiteFactory = Callable[[str, str], Site]


@pytest.fixture
def site_factory(fake_server: FakeServer) -> Iterator[SiteFactory]:
    """Start the whoami app behind dingmw for (flow, adapter), on its own free port."""
    with contextlib.ExitStack() as stack:

        def make(flow: str, adapter: str) -> Site:
            settings = fake_settings(fake_server.url, flow=flow)
            if adapter == "asgi":
                url = stack.enter_context(serve_asgi(ASGIMiddleware(asgi_whoami(), settings)))
            else:
                client = stack.enter_context(httpx.Client(timeout=settings.http_timeout))
                flask = flask_whoami()
                flask.wsgi_app = WSGIMiddleware(  # type: ignore[method-assign]  # documented way
                    flask.wsgi_app, settings, client=client
                )
                url = stack.enter_context(serve_wsgi(flask))
            assert urlsplit(url).port != urlsplit(fake_server.url).port
            return Site(url=url, flow=flow, adapter=adapter)

        yield make


@pytest.fixture
def page(context_factory: ContextFactory) -> Iterator[Page]:
    """A page in a fresh context; any uncaught script error fails the test."""
    page = context_factory().new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    assert errors == [], f"script errors in the page: {errors}"


# --- helpers -----------------------------------------------------------------------------------


def url_is(expected: str) -> Callable[[str], bool]:
    return lambda url: url == expected


def on_login_page(page: Page, site: Site, next_path: str) -> dict[str, Any]:
    """Wait for dingmw's login page with `next=next_path`; return its #dingmw-config."""
    page.wait_for_url(lambda url: url.startswith(site.url + LOGIN_PATH + "?"))
    assert parse_qs(urlsplit(page.url).query)["next"] == [next_path]
    page.wait_for_load_state("load")  # the QR frame, added while parsing, has loaded too
    config: dict[str, Any] = json.loads(page.locator("#dingmw-config").text_content() or "")
    return config


def scan(page: Page, unionid: str) -> None:
    """ "Scan the QR code" as `unionid`: click that person's button inside the QR frame.

    The tab comes to the front first, as it would for a person: Chromium throttles animation
    frames in background tabs, which only slows Playwright's actionability checks down."""
    page.bring_to_front()
    frame = page.frame_locator("#dingmw-qr iframe")
    frame.locator(f'.fake-dingtalk-user[data-unionid="{unionid}"]').click()


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def expect_logged_in(page: Page, site: Site, target: str, nick: str, unionid: str) -> None:
    page.wait_for_url(url_is(site.url + target))
    expect(page.locator("#unionid")).to_have_text(unionid)
    expect(page.locator("#nick")).to_have_text(nick)
    expect(page.locator("#flow")).to_have_text(site.flow)
    expect(page.locator("#target")).to_have_text(target)


# --- 1. the whole login, each flow through each adapter -----------------------------------------


@pytest.mark.parametrize("flow", FLOWS)
def test_qr_login_me_logout(
    flow: str, adapter: str, site_factory: SiteFactory, fake_server: FakeServer, page: Page
) -> None:
    site = site_factory(flow, adapter)

    page.goto(site.url + "/private?x=1")
    config = on_login_page(page, site, "/private?x=1")
    assert config["flow"] == flow
    assert config["login_origin"] == fake_server.url
    frame = page.locator("#dingmw-qr iframe")
    expect(frame).to_have_count(1)
    src = frame.get_attribute("src") or ""
    assert src.startswith(fake_server.url + FRAME_PATH[flow]), src
    expect(page.frame_locator("#dingmw-qr iframe").locator(".fake-dingtalk-user")).to_have_count(3)
    shot(page, f"{flow}-{adapter}-login")

    scan(page, ZHANGSAN.unionid)
    expect_logged_in(page, site, "/private?x=1", ZHANGSAN.nick, ZHANGSAN.unionid)
    expect(page.locator("#greeting")).to_have_text(f"Hello, {ZHANGSAN.display_name}")
    shot(page, f"{flow}-{adapter}-logged-in")

    me = page.goto(site.url + "/dingtalk/me")
    assert me is not None
    assert me.status == 200
    assert me.header_value("content-type") == "application/json"
    identity = me.json()
    assert identity["unionid"] == ZHANGSAN.unionid
    assert identity["nick"] == ZHANGSAN.nick
    assert identity["flow"] == flow

    page.goto(site.url + "/dingtalk/logout")
    on_login_page(page, site, "/")  # logout → / → login again
    me = page.goto(site.url + "/dingtalk/me")
    assert me is not None
    assert me.status == 401
    assert me.json()["error"] == "login_required"
    page.goto(site.url + "/private?x=1")
    on_login_page(page, site, "/private?x=1")


# --- 2. messages from the wrong origin never drive the login ------------------------------------


# Runs before any script of each document: a capture-phase listener registered before the
# page's own sees every message, even one the page stops (dingmw's oauth2 guard does that).
WATCH_EVIL = """
window.__evil = [];
window.addEventListener("message", (event) => {
  const text = typeof event.data === "string" ? event.data : JSON.stringify(event.data);
  if (text && text.includes("EVILCODE")) { window.__evil.push(event.origin); }
}, true);
"""

# What the QR frame does, from the wrong origin: post the message in the URL's fragment (the
# fragment never reaches a server, so the request log only shows a real navigation).
EVIL_PAGE = (
    "<!doctype html><script>"
    "parent.postMessage(JSON.parse(decodeURIComponent(location.hash.slice(1))), '*');"
    "</script>"
)

INJECT_FRAME = """(src) => {
  const frame = document.createElement("iframe");
  frame.src = src;
  document.body.appendChild(frame);
}"""


async def _evil(request: StarletteRequest) -> HTMLResponse:
    return HTMLResponse(EVIL_PAGE)


@pytest.fixture(scope="module")
def evil_url() -> Iterator[str]:
    """A third origin on the same host as the app and the fake (another port): the case the
    real DTFrameLogin's loose /login.dingtalk.com/ origin test lets through."""
    with serve_asgi(Starlette(routes=[StarletteRoute("/{path:path}", _evil)])) as url:
        yield url


def record_requests(page: Page) -> list[str]:
    seen: list[str] = []

    def on_request(request: Request) -> None:
        seen.append(request.url)

    page.context.on("request", on_request)
    return seen


def prepare_evil(page: Page) -> None:
    """Before the login page loads: watch messages, and serve `EVIL_ORIGIN` from Playwright."""

    def fulfil(route: Route) -> None:
        route.fulfill(status=200, content_type="text/html", body=EVIL_PAGE)

    page.route(f"{EVIL_ORIGIN}/**", fulfil)
    page.add_init_script(WATCH_EVIL)


def send_evil_messages(page: Page, message: object, evil_url: str) -> list[str]:
    """Post `message` to the login page from a frame of `EVIL_ORIGIN`, from a frame of
    `evil_url` and from the page itself (the app's origin); return the origins seen once all
    three have been dispatched (the page's own listeners have run by then)."""
    fragment = "#" + quote(json.dumps(message), safe="")
    for origin in (EVIL_ORIGIN, evil_url):
        page.evaluate(INJECT_FRAME, f"{origin}/frame{fragment}")
    page.evaluate("(m) => window.postMessage(m, '*')", message)
    # Also true at once if the page navigated away: fail here, not at a timeout.
    # A function, not an expression string: the page's CSP forbids eval (as it should).
    page.wait_for_function(
        "(path) => location.pathname !== path || window.__evil.length >= 3", arg=LOGIN_PATH
    )
    assert urlsplit(page.url).path == LOGIN_PATH, f"a wrong-origin message was obeyed: {page.url}"
    return sorted(str(origin) for origin in page.evaluate("window.__evil"))


@pytest.mark.parametrize("flow", ["sns", "bycode"])
def test_ddlogin_ignores_login_tmp_code_from_other_origins(
    flow: str, site_factory: SiteFactory, evil_url: str, page: Page
) -> None:
    site = site_factory(flow, "asgi")
    requests = record_requests(page)
    prepare_evil(page)
    page.goto(site.url + "/private?x=1")
    on_login_page(page, site, "/private?x=1")

    seen = send_evil_messages(page, "EVILCODE123", evil_url)
    assert seen == sorted([EVIL_ORIGIN, evil_url, site.url])

    scan(page, LISI.unionid)
    expect_logged_in(page, site, "/private?x=1", LISI.nick, LISI.unionid)
    assert [url for url in requests if "EVILCODE" in url] == []
    assert any("loginTmpCode=" in url for url in requests), "the real scan left no trace"


def test_dtframe_ignores_auth_code_from_other_origins(
    site_factory: SiteFactory, evil_url: str, page: Page
) -> None:
    site = site_factory("oauth2", "asgi")
    requests = record_requests(page)
    prepare_evil(page)
    page.goto(site.url + "/private?x=1")
    config = on_login_page(page, site, "/private?x=1")

    forged = {
        "success": True,
        "redirectUrl": f"{site.url}/dingtalk/callback?authCode=EVILCODE789&state={config['state']}",
    }
    seen = send_evil_messages(page, forged, evil_url)
    assert seen == sorted([EVIL_ORIGIN, evil_url, site.url])

    scan(page, LISI.unionid)
    expect_logged_in(page, site, "/private?x=1", LISI.nick, LISI.unionid)
    assert [url for url in requests if "EVILCODE" in url] == []
    assert any("/dingtalk/callback?authCode=" in url for url in requests)


# --- 3. two tabs log in at once --------------------------------------------------------------


@pytest.mark.parametrize("flow", FLOWS)
def test_two_tabs_finish_in_reverse_order(
    flow: str, adapter: str, site_factory: SiteFactory, context_factory: ContextFactory
) -> None:
    site = site_factory(flow, adapter)
    context = context_factory()
    first, second = context.new_page(), context.new_page()
    first.goto(site.url + "/private?tab=1")
    first_config = on_login_page(first, site, "/private?tab=1")
    second.goto(site.url + "/private?tab=2")
    second_config = on_login_page(second, site, "/private?tab=2")
    assert first_config["state"] != second_config["state"]

    scan(second, LISI.unionid)
    expect_logged_in(second, site, "/private?tab=2", LISI.nick, LISI.unionid)
    scan(first, ZHANGSAN.unionid)
    expect_logged_in(first, site, "/private?tab=1", ZHANGSAN.nick, ZHANGSAN.unionid)


# --- 4. refusing on DingTalk's own page ---------------------------------------------------------


def test_deny_on_full_page_oauth2(
    adapter: str, site_factory: SiteFactory, fake_server: FakeServer, page: Page
) -> None:
    site = site_factory("oauth2", adapter)
    page.goto(site.url + "/private?x=1")
    config = on_login_page(page, site, "/private?x=1")
    expect(page.locator("#dingmw-fallback")).to_have_attribute("href", config["authorize_url"])
    page.locator("#dingmw-fallback").click()
    page.wait_for_url(lambda url: url.startswith(fake_server.url + "/oauth2/auth?"))

    with page.expect_response(
        lambda r: urlsplit(r.url).path == "/dingtalk/callback" and r.request.is_navigation_request()
    ) as callback:
        page.locator(".fake-dingtalk-deny").click()
    response = callback.value
    assert response.status == 400
    assert parse_qs(urlsplit(response.url).query)["error"] == ["access_denied"]
    error = page.locator('#dingmw-error[data-reason="dingtalk_denied"]')
    expect(error).to_be_visible()
    expect(error).to_contain_text("DingTalk did not authorize the login")
    body = page.content()
    assert "Traceback" not in body
    assert 'File "' not in body


def test_fallback_page_login(
    adapter: str, site_factory: SiteFactory, fake_server: FakeServer, page: Page
) -> None:
    """The link under the QR code (DingTalk's own page, no frame) logs in too."""
    site = site_factory("sns", adapter)
    page.goto(site.url + "/private?x=1")
    on_login_page(page, site, "/private?x=1")
    page.locator("#dingmw-fallback").click()
    page.wait_for_url(lambda url: url.startswith(fake_server.url + "/connect/oauth2/sns_authorize"))
    page.locator(f'.fake-dingtalk-user[data-unionid="{ZHANGSAN.unionid}"]').click()
    expect_logged_in(page, site, "/private?x=1", ZHANGSAN.nick, ZHANGSAN.unionid)


# --- 5. the login page speaks the browser's language ------------------------------------------


@pytest.mark.parametrize(
    ("locale", "lang", "title", "hint"),
    [
        pytest.param("zh-CN", "zh-CN", "钉钉登录", "请使用手机钉钉扫描二维码登录。", id="zh-CN"),
        pytest.param(
            "en-US", "en", "Log in with DingTalk", "Open the DingTalk app on your phone", id="en-US"
        ),
    ],
)
def test_login_page_language(
    locale: str,
    lang: str,
    title: str,
    hint: str,
    site_factory: SiteFactory,
    context_factory: ContextFactory,
) -> None:
    site = site_factory("oauth2", "asgi")
    page = context_factory(locale=locale).new_page()
    page.goto(site.url + "/private")
    on_login_page(page, site, "/private")
    expect(page.locator("html")).to_have_attribute("lang", lang)
    expect(page).to_have_title(title)
    expect(page.locator("h1")).to_have_text(title)
    expect(page.locator("main .hint").first).to_contain_text(hint)
    text = page.locator("main").inner_text()
    if lang == "en":
        assert not CJK.search(text), text
    else:
        assert "无法扫码" in text
