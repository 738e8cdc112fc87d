"""In a real headless Chromium: two sites behind dingmw with DINGMW_FLOW=hub, one hub, and
the fake DingTalk, each on its own port. Site → hub → DingTalk's own login page (the hub's
default) or the hub's QR page (DINGMW_LOGIN_PAGE=qr) → hub → site, then the second site logs
in through the hub without a second scan."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
from playwright.sync_api import Page, expect

from dingmw import ASGIMiddleware, Settings, WSGIMiddleware
from dingmw.config import HubClient
from dingmw.hub import create_app
from dingmw.testing import ZHANGSAN

from .conftest import ContextFactory, FakeServer
from .servers import free_socket, serve_asgi, serve_wsgi
from .support import SECRET_KEY, hub_settings
from .test_browser import asgi_whoami, flask_whoami, scan

pytestmark = pytest.mark.browser

SECRETS = {"a": "site-a-secret-0123456789", "b": "site-b-secret-0123456789"}


@dataclass(frozen=True)
class World:
    hub: str
    sites: dict[str, str]


def site_settings(name: str, hub: str) -> Settings:
    return Settings(
        flow="hub",
        hub_url=hub,
        app_key=f"site-{name}",
        app_secret=SECRETS[name],
        secret_keys=(SECRET_KEY,),
        cookie_name=f"site_{name}_session",  # cookies ignore ports: one name per app
    )


@pytest.fixture(params=["dingtalk", "qr"])
def login_page(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


def sign_in_at_dingtalk(page: Page, unionid: str) -> None:
    """On DingTalk's own login page (no frame, no script): choose the person and submit."""
    page.bring_to_front()
    page.locator(f'button.fake-dingtalk-user[data-unionid="{unionid}"]').click()


@pytest.fixture
def world(fake_server: FakeServer, adapter: str, login_page: str) -> Iterator[World]:
    # Reserve the sites' ports first: the hub must know their exact redirect URLs.
    socks = {name: free_socket() for name in ("a", "b")}
    urls = {name: f"http://127.0.0.1:{s.getsockname()[1]}" for name, s in socks.items()}
    fake = fake_server.url
    hub_app = create_app(
        hub_settings(
            fake,
            login_page=login_page,
            login_script_url=f"{fake}/h5-dingtalk-login/ddlogin.js",
            hub_clients=tuple(
                HubClient(
                    client_id=f"site-{name}",
                    client_secret=SECRETS[name],
                    redirect_urls=(f"{urls[name]}/dingtalk/callback",),
                )
                for name in ("a", "b")
            ),
        )
    )
    with contextlib.ExitStack() as stack:
        for sock in socks.values():
            stack.callback(sock.close)  # also when a server fails to start
        hub = stack.enter_context(serve_asgi(hub_app))
        served = {}
        for name in ("a", "b"):
            settings = site_settings(name, hub)
            if adapter == "asgi":
                app = ASGIMiddleware(asgi_whoami(), settings)
                served[name] = stack.enter_context(serve_asgi(app, sock=socks[name]))
            else:
                flask = flask_whoami()
                client = stack.enter_context(httpx.Client(timeout=5))
                flask.wsgi_app = WSGIMiddleware(  # type: ignore[method-assign]  # documented way
                    flask.wsgi_app, settings, client=client
                )
                served[name] = stack.enter_context(serve_wsgi(flask, sock=socks[name]))
        assert served == urls
        yield World(hub=hub, sites=urls)


def test_two_sites_one_hub_one_scan(
    world: World, context_factory: ContextFactory, fake_server: FakeServer, login_page: str
) -> None:
    page: Page = context_factory().new_page()
    site_a, site_b = world.sites["a"], world.sites["b"]

    page.goto(site_a + "/reports?q=1")
    if login_page == "dingtalk":
        # The site sends the browser to the hub, and the hub to DingTalk's login page (seed 002).
        page.wait_for_url(lambda url: url.startswith(fake_server.url + "/oauth2/auth?"))
        callback = parse_qs(urlsplit(page.url).query)["redirect_uri"][0]
        forward_url = quote(site_a + "/dingtalk/callback", safe="")
        assert callback == f"{world.hub}/dingtalk/callback?forward_url={forward_url}"
        sign_in_at_dingtalk(page, ZHANGSAN.unionid)
    else:
        # The hub shows its own page with the embedded QR.
        page.wait_for_url(lambda url: url.startswith(world.hub + "/dingtalk/authorize?"))
        page.wait_for_load_state("load")
        scan(page, ZHANGSAN.unionid)
    page.wait_for_url(site_a + "/reports?q=1")
    expect(page.locator("#unionid")).to_have_text(ZHANGSAN.unionid)
    expect(page.locator("#flow")).to_have_text("hub")
    me = page.request.get(site_a + "/dingtalk/me").json()
    assert me["userid"] == "zhangsan"  # the hub looked the person up in the organisation
    assert me["email"] == ZHANGSAN.org_email

    # Site B: straight through the hub's session, no QR page in between.
    seen: list[str] = []
    page.on("framenavigated", lambda frame: seen.append(frame.url))
    page.goto(site_b + "/home")
    page.wait_for_url(site_b + "/home")
    expect(page.locator("#unionid")).to_have_text(ZHANGSAN.unionid)
    assert not any(url.startswith(fake_server.url) for url in seen)
    assert fake_server.fake.calls["/v1.0/oauth2/userAccessToken"] >= 1
