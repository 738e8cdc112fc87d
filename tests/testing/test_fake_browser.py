"""The widget stand-ins in a real headless Chromium: the QR frame's postMessage reaches the
host page exactly as DingTalk's does (plain string for ddLogin, object for DTFrameLogin)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from playwright.sync_api import Page, sync_playwright

from dingmw.testing import DEFAULT_APP_KEY, LISI, ZHANGSAN, FakeDingTalk

from ..servers import serve_asgi

pytestmark = pytest.mark.browser

CALLBACK = "http://127.0.0.1:8000/cb"


@pytest.fixture(scope="module")
def origin() -> Iterator[str]:
    with serve_asgi(FakeDingTalk().asgi_app) as url:
        yield url


@pytest.fixture(scope="module")
def page() -> Iterator[Page]:
    with sync_playwright() as p:
        # Playwright's bundled build if installed, else a system Chromium.
        system = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium")
        bundled = os.path.exists(p.chromium.executable_path)
        browser = p.chromium.launch(executable_path=None if bundled or not system else system)
        try:
            yield browser.new_page()
        finally:
            browser.close()


def test_dtframelogin(origin: str, page: Page) -> None:
    page.set_content(
        f"""<div id="box"></div><script src="{origin}/h5-dingtalk-login/ddlogin.js"></script>
        <script>
        window.results = [];
        window.DTFrameLogin({{id: "box", width: 300, height: 300}},
          {{redirect_uri: encodeURIComponent("{CALLBACK}"), client_id: "{DEFAULT_APP_KEY}",
            scope: "openid", response_type: "code", state: "s1", prompt: "consent"}},
          function (r) {{ window.results.push(["ok", r]); }},
          function (e) {{ window.results.push(["err", e]); }});
        </script>"""
    )
    frame = page.frame_locator("#box iframe")
    frame.locator(f'button.fake-dingtalk-user[data-unionid="{ZHANGSAN.unionid}"]').click()
    page.wait_for_function("window.results.length > 0")
    kind, result = page.evaluate("window.results[0]")
    assert kind == "ok"
    assert result["state"] == "s1"
    assert result["authCode"]
    assert result["redirectUrl"].startswith(CALLBACK + "?authCode=" + result["authCode"])


def test_ddlogin_posts_plain_login_tmp_code(origin: str, page: Page) -> None:
    goto = (
        f"{origin}/connect/oauth2/sns_authorize?appid={DEFAULT_APP_KEY}&response_type=code"
        f"&scope=snsapi_login&state=S&redirect_uri={quote(CALLBACK, safe='')}"
    )
    page.set_content(
        f"""<div id="qr"></div><script src="{origin}/dinglogin/ddLogin.js"></script>
        <script>
        window.got = [];
        window.addEventListener("message", function (e) {{ window.got.push([e.origin, e.data]); }});
        window.DDLogin({{id: "qr", goto: encodeURIComponent({goto!r}), style: "border:none",
                         width: "365", height: "400"}});
        </script>"""
    )
    frame = page.frame_locator("#qr iframe")
    frame.locator(f'button.fake-dingtalk-user[data-unionid="{LISI.unionid}"]').click()
    page.wait_for_function("window.got.length > 0")
    event_origin, data = page.evaluate("window.got[0]")
    assert event_origin == origin
    assert isinstance(data, str)
    assert len(data) == 32
