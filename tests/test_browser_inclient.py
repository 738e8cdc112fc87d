"""Silent login inside the DingTalk client, in a real headless Chromium whose User-Agent says
DingTalk: the login page asks the JSAPI for a code and logs the person in with no QR; when
the JSAPI fails, it falls back to the QR of the configured flow."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from dingmw import ASGIMiddleware
from dingmw.demo import fake_settings
from dingmw.testing import DEFAULT_CORP_ID, LISI, ZHANGSAN

from .conftest import ContextFactory, FakeServer
from .servers import serve_asgi
from .support import FLOWS
from .test_browser import asgi_whoami, scan

pytestmark = pytest.mark.browser

DINGTALK_UA = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0 Mobile Safari/537.36 AliApp(DingTalk/7.6.0) com.alibaba.android.rimet "
    "DingTalk/7.6.0 Channel/201200 language/zh-Hans-CN"
)


@pytest.fixture
def fake_client_user(fake_server: FakeServer) -> Iterator[FakeServer]:
    before = fake_server.fake.client_user
    yield fake_server
    fake_server.fake.client_user = before


@contextlib.contextmanager
def site(fake_url: str, flow: str) -> Iterator[str]:
    settings = dataclasses.replace(
        fake_settings(fake_url, flow=flow),
        corp_id=DEFAULT_CORP_ID,
        enrich="detail",
        jsapi_script_url=f"{fake_url}/dingtalk-jsapi/dingtalk.open.js",
    )
    with serve_asgi(ASGIMiddleware(asgi_whoami(), settings)) as url:
        yield url


@pytest.mark.parametrize("flow", FLOWS)
def test_inside_the_client_no_qr_is_needed(
    flow: str, fake_client_user: FakeServer, context_factory: ContextFactory
) -> None:
    fake = fake_client_user.fake
    fake.client_user = LISI.unionid
    with site(fake_client_user.url, flow) as url:
        page = context_factory(user_agent=DINGTALK_UA).new_page()
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        page.goto(url + "/private?x=1")
        page.wait_for_url(url + "/private?x=1")
        expect(page.locator("#unionid")).to_have_text(LISI.unionid)
        expect(page.locator("#flow")).to_have_text("inclient")
        me = page.request.get(url + "/dingtalk/me").json()
        assert me["userid"] == "lisi"
        assert me["dept_ids"] == [200]
        assert any("/dingtalk/callback?jsapi_code=" in r for r in requests)
        assert not any("/oauth2/auth" in r or "/login/qrcode.htm" in r for r in requests)


@pytest.mark.parametrize("flow", FLOWS)
def test_jsapi_failure_falls_back_to_the_qr(
    flow: str, fake_client_user: FakeServer, context_factory: ContextFactory
) -> None:
    fake_client_user.fake.client_user = None  # the client has nobody logged in: onFail
    with site(fake_client_user.url, flow) as url:
        page = context_factory(user_agent=DINGTALK_UA).new_page()
        page.goto(url + "/private?x=1")
        page.wait_for_url(lambda u: u.startswith(url + "/dingtalk/login?"))
        expect(page.locator("#dingmw-qr iframe")).to_be_visible()
        scan(page, ZHANGSAN.unionid)
        page.wait_for_url(url + "/private?x=1")
        expect(page.locator("#unionid")).to_have_text(ZHANGSAN.unionid)
        expect(page.locator("#flow")).to_have_text(flow)


def test_outside_the_client_the_jsapi_is_not_loaded(
    fake_client_user: FakeServer, context_factory: ContextFactory
) -> None:
    with site(fake_client_user.url, "oauth2") as url:
        page = context_factory().new_page()  # an ordinary browser
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        page.goto(url + "/private")
        page.wait_for_url(lambda u: u.startswith(url + "/dingtalk/login?"))
        expect(page.locator("#dingmw-qr iframe")).to_be_visible()
        assert not any("dingtalk.open.js" in r for r in requests)
