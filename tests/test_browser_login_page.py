"""In a real headless Chromium: DINGMW_LOGIN_PAGE=dingtalk on the middleware, for each flow and
adapter. The browser goes from the app straight to DingTalk's own login page (the fake's),
the person signs in there, and comes back logged in. (`qr`, the default: tests/test_browser.py.)"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect

from dingmw import ASGIMiddleware, WSGIMiddleware
from dingmw.demo import fake_settings
from dingmw.testing import ZHANGSAN

from .conftest import ContextFactory, FakeServer
from .servers import serve_asgi, serve_wsgi
from .support import FLOWS
from .test_browser import asgi_whoami, flask_whoami
from .test_browser_hub import sign_in_at_dingtalk

pytestmark = pytest.mark.browser

HOSTED_PATH = {
    "oauth2": "/oauth2/auth?",
    "sns": "/connect/qrconnect?",
    "bycode": "/connect/qrconnect?",
}


@pytest.fixture(params=FLOWS)
def flow(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture
def site(fake_server: FakeServer, flow: str, adapter: str) -> Iterator[str]:
    settings = dataclasses.replace(fake_settings(fake_server.url, flow=flow), login_page="dingtalk")
    with contextlib.ExitStack() as stack:
        if adapter == "asgi":
            yield stack.enter_context(serve_asgi(ASGIMiddleware(asgi_whoami(), settings)))
        else:
            client = stack.enter_context(httpx.Client(timeout=settings.http_timeout))
            flask = flask_whoami()
            flask.wsgi_app = WSGIMiddleware(  # type: ignore[method-assign]  # documented way
                flask.wsgi_app, settings, client=client
            )
            yield stack.enter_context(serve_wsgi(flask))


def test_login_on_dingtalks_own_page(
    site: str, flow: str, fake_server: FakeServer, context_factory: ContextFactory
) -> None:
    page: Page = context_factory().new_page()
    page.goto(site + "/reports?q=1")
    page.wait_for_url(lambda url: url.startswith(fake_server.url + HOSTED_PATH[flow]))
    sign_in_at_dingtalk(page, ZHANGSAN.unionid)
    page.wait_for_url(site + "/reports?q=1")
    expect(page.locator("#unionid")).to_have_text(ZHANGSAN.unionid)
    expect(page.locator("#flow")).to_have_text(flow)
