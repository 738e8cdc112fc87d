"""dingmw's pages made the site's own: its name and logo, the 中文/English switch, a
directory of override templates, the words for two misleading cases, and (in Chromium)
pages that fit a 390 px wide phone."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page

from dingmw import ConfigError, WSGIMiddleware
from dingmw.asgi import ASGIMiddleware
from dingmw.demo import example_app, fake_settings
from dingmw.testing import ZHANGSAN, FakeDingTalk, login_as

from .conftest import ContextFactory, FakeServer
from .servers import serve_asgi
from .support import HTML, login, make_settings, page_config, start_login, wsgi_app

EN = {**HTML, "accept-language": "en-US,en;q=0.9"}


def client_for(fake: FakeDingTalk, **overrides: Any) -> httpx.Client:
    app = wsgi_app()
    app.wsgi_app = WSGIMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, make_settings(**overrides), transport=fake.transport()
    )
    return httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://testserver")


def test_the_site_name_and_logo_are_on_the_login_and_error_pages(fake: FakeDingTalk) -> None:
    client = client_for(fake, site_name="报销系统", site_logo_url="/static/logo.png")
    page = client.get("/dingtalk/login", params={"next": "/"}, headers=EN).text
    assert "<title>Log in with DingTalk · 报销系统</title>" in page
    assert '<img class="dingmw-logo" src="/static/logo.png" alt="报销系统">' in page
    assert '<p class="dingmw-site-name">报销系统</p>' in page
    error = client.get("/dingtalk/callback", headers=EN).text
    assert '<p class="dingmw-site-name">报销系统</p>' in error
    plain = client_for(fake).get("/dingtalk/login", headers=EN).text
    assert 'id="dingmw-site"' not in plain


def test_the_site_name_is_escaped(fake: FakeDingTalk) -> None:
    page = client_for(fake, site_name="<b>x</b>").get("/dingtalk/login", headers=EN).text
    assert "&lt;b&gt;x&lt;/b&gt;" in page
    assert "<b>x</b>" not in page


@pytest.mark.parametrize("logo", ["javascript:alert(1)", "//evil.example/x.png", "logo.png"])
def test_a_logo_is_an_http_url_or_a_path(logo: str) -> None:
    with pytest.raises(ConfigError, match="DINGMW_SITE_LOGO_URL"):
        make_settings(site_logo_url=logo)


def test_the_language_switch_keeps_next_and_is_remembered(fake: FakeDingTalk) -> None:
    client = client_for(fake)
    page = client.get("/dingtalk/login", params={"next": "/reports"}, headers=EN)
    assert '<html lang="en">' in page.text
    links = dict(re.findall(r'<a lang="(\w+)" hreflang="\w+" href="([^"]+)"', page.text))
    assert set(links) == {"zh"}  # the current language is not a link
    zh_url = links["zh"].replace("&amp;", "&")
    assert zh_url == "/dingtalk/login?next=%2Freports&lang=zh"
    chinese = client.get(zh_url, headers=EN)
    assert '<html lang="zh-CN">' in chinese.text
    assert "钉钉登录" in chinese.text
    assert page_config(chinese)["state"]
    assert "dingmw_session_lang=zh" in chinese.headers["set-cookie"]
    # The choice holds on the pages that follow, whatever Accept-Language says.
    error = client.get("/dingtalk/callback", headers=EN)
    assert '<html lang="zh-CN">' in error.text
    assert 'id="dingmw-lang"' not in error.text  # no switch on a page that spent a state


def test_an_unknown_language_is_ignored(fake: FakeDingTalk) -> None:
    page = client_for(fake).get("/dingtalk/login", params={"lang": "fr"}, headers=EN)
    assert '<html lang="en">' in page.text
    assert "set-cookie" not in page.headers or "_lang=" not in page.headers["set-cookie"]


def test_a_replayed_callback_in_a_browser_still_logged_in(fake: FakeDingTalk) -> None:
    client = client_for(fake)
    config = start_login(client, "/")
    callback = fake.scan(config["authorize_url"], ZHANGSAN.unionid)
    assert client.get(callback, headers=EN).status_code == 302
    replay = client.get(callback, headers=EN)  # the Back button
    assert replay.status_code == 400
    assert re.search(r'data-reason="state_(used|unknown)"', replay.text)
    assert "You are still logged in as 张三" in replay.text
    assert 'id="dingmw-continue"' in replay.text
    client.cookies.clear()
    stranger = client.get(callback, headers=EN)  # a browser that is not logged in
    assert "already been used" in stranger.text or "another browser" in stranger.text
    assert "still logged in" not in stranger.text


def test_declining_in_the_frame_says_so(fake: FakeDingTalk) -> None:
    page = client_for(fake).get("/dingtalk/login", headers=EN).text
    assert "if you declined" not in page  # the words live in a data attribute, shown on error
    assert "not completed in DingTalk (declined or cancelled" in page


# Override templates ---------------------------------------------------------------------


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    (tmp_path / "login.html").write_text(
        '{% extends "dingmw/login.html" %}\n'
        '{% block login_heading %}<h1 id="own">Welcome to {{ site.name }}</h1>{% endblock %}\n',
        encoding="utf-8",
    )
    (tmp_path / "base.html").write_text(
        '{% extends "dingmw/base.html" %}\n'
        '{% block footer %}<footer id="own-footer">© ACME</footer>{% endblock %}\n',
        encoding="utf-8",
    )
    return tmp_path


def test_override_templates_extend_dingmws_own(fake: FakeDingTalk, templates: Path) -> None:
    client = client_for(fake, templates_dir=str(templates), site_name="ACME")
    page = client.get("/dingtalk/login", params={"next": "/"}, headers=EN)
    assert '<h1 id="own">Welcome to ACME</h1>' in page.text
    assert '<footer id="own-footer">© ACME</footer>' in page.text
    assert page_config(page)["authorize_url"]  # the QR config and scripts are still there
    error = client.get("/dingtalk/callback", headers=EN).text
    assert '<footer id="own-footer">' in error  # base.html overrides every page
    assert login(client, fake, ZHANGSAN.unionid, next_path="/").status_code == 302


def test_a_template_that_does_not_compile_stops_start_up(tmp_path: Path) -> None:
    (tmp_path / "error.html").write_text("{% block content %}", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"DINGMW_TEMPLATES_DIR: error.html line 1"):
        WSGIMiddleware(wsgi_app().wsgi_app, make_settings(templates_dir=str(tmp_path)))


def test_the_templates_dir_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="DINGMW_TEMPLATES_DIR must be an existing directory"):
        make_settings(templates_dir=str(tmp_path / "missing"))


# A 390 px wide phone, in Chromium -----------------------------------------------------

PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 1}


@pytest.fixture
def demo_site(fake_server: FakeServer) -> Iterator[str]:
    settings = fake_settings(fake_server.url)
    with serve_asgi(ASGIMiddleware(example_app(), settings)) as url:
        yield url


def overflow(page: Page) -> int:
    width: int = page.evaluate("() => document.scrollingElement.scrollWidth")
    return width - 390


@pytest.mark.browser
def test_the_pages_fit_a_phone(
    context_factory: ContextFactory, demo_site: str, fake_server: FakeServer, tmp_path: Path
) -> None:
    page = context_factory(**PHONE).new_page()
    page.goto(demo_site + "/")
    page.wait_for_url(lambda url: "/dingtalk/login?" in url)
    page.wait_for_load_state("load")
    page.locator("#dingmw-qr iframe").wait_for()
    page.screenshot(path=str(tmp_path / "login-390.png"), full_page=True)
    assert overflow(page) <= 0, "the login page is wider than the phone"
    page.frame_locator("#dingmw-qr iframe").locator(
        f'.fake-dingtalk-user[data-unionid="{ZHANGSAN.unionid}"]'
    ).click()
    page.locator("#greeting").wait_for()
    page.screenshot(path=str(tmp_path / "demo-390.png"), full_page=True)
    assert overflow(page) <= 0, "the demo page is wider than the phone"
    page.goto(demo_site + "/dingtalk/callback?state=x")
    page.locator("#dingmw-error").wait_for()
    assert overflow(page) <= 0, "the error page is wider than the phone"
    assert page.evaluate("() => document.querySelector('meta[name=viewport]') !== null")


def test_login_as_and_pages_share_nothing_odd(fake: FakeDingTalk) -> None:
    client = client_for(fake, site_name="S")
    login_as(client, ZHANGSAN)
    assert client.get("/private").json()["unionid"] == ZHANGSAN.unionid
