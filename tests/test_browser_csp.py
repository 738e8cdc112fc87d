"""In Chromium: dingmw's login page under its Content-Security-Policy, with the QR widget
script pinned by Subresource Integrity (the right hash logs in, a wrong one runs nothing)."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import json
from collections.abc import Iterator, MutableMapping
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, Route, expect

from dingmw import ASGIMiddleware
from dingmw.demo import fake_settings
from dingmw.testing import LISI

from .conftest import ContextFactory, FakeServer
from .servers import serve_asgi

pytestmark = pytest.mark.browser

LOGIN_PATH = "/dingtalk/login"


def sri(body: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(body).digest()).decode()


@pytest.fixture
def page(context_factory: ContextFactory) -> Page:
    return context_factory().new_page()


async def whoami(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
    identity = scope.get("dingtalk.identity")
    body = json.dumps({"unionid": getattr(identity, "unionid", None)}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


@contextlib.contextmanager
def start_site(fake_server: FakeServer, integrity: str) -> Iterator[str]:
    settings = dataclasses.replace(
        fake_settings(fake_server.url, flow="oauth2"), login_script_integrity=integrity
    )
    with serve_asgi(ASGIMiddleware(whoami, settings)) as url:
        yield url


def widget_script(fake_server: FakeServer, origin: str) -> bytes:
    settings = fake_settings(fake_server.url, flow="oauth2")
    response = httpx.get(settings.widget_script_url, headers={"origin": origin})
    assert response.headers["access-control-allow-origin"] == "*"
    return response.content


def test_the_pinned_widget_script_runs_and_logs_in(fake_server: FakeServer, page: Page) -> None:
    violations: list[str] = []
    page.on(
        "console", lambda m: violations.append(m.text) if "Content Security" in m.text else None
    )
    body = widget_script(fake_server, "http://127.0.0.1")
    with start_site(fake_server, sri(body)) as url:
        page.goto(url + "/private")
        page.wait_for_url(f"{url}{LOGIN_PATH}?**")
        script = page.locator("script[src]")
        expect(script).to_have_attribute("integrity", sri(body))
        expect(script).to_have_attribute("crossorigin", "anonymous")
        page.frame_locator("#dingmw-qr iframe").locator(
            f'.fake-dingtalk-user[data-unionid="{LISI.unionid}"]'
        ).click()
        page.wait_for_url(url + "/private")
        assert LISI.unionid in (page.text_content("body") or "")
    assert violations == []


def test_a_widget_script_that_does_not_match_its_hash_never_runs(
    fake_server: FakeServer, page: Page
) -> None:
    blocked: list[str] = []
    page.on("console", lambda m: blocked.append(m.text))
    with start_site(fake_server, sri(b"not the script the CDN serves")) as url:
        page.goto(url + "/private")
        page.wait_for_url(f"{url}{LOGIN_PATH}?**")
        expect(page.locator("#dingmw-status")).to_be_visible()  # "widget could not be loaded"
        expect(page.locator("#dingmw-qr iframe")).to_have_count(0)
    assert any("integrity" in text for text in blocked), blocked


def test_an_injected_inline_script_does_not_run(fake_server: FakeServer, page: Page) -> None:
    """Markup injected into the page (as a reflected XSS would be), served with the page's
    own headers: the script has no nonce, so the policy stops it."""
    page.add_init_script(
        "window.__violations = [];"
        "document.addEventListener('securitypolicyviolation',"
        " (e) => window.__violations.push(e.violatedDirective));"
    )
    injected = (
        "<script>window.__injected = true</script>"
        '<img src="data:," onload="window.__injected = true">'
    )

    def inject(route: Route) -> None:
        response = route.fetch()
        body = response.text().replace("</main>", injected + "</main>")
        assert injected in body
        route.fulfill(response=response, body=body)

    with start_site(fake_server, sri(widget_script(fake_server, "http://x"))) as url:
        page.route(f"{url}{LOGIN_PATH}?**", inject)
        page.goto(f"{url}{LOGIN_PATH}?next=/private")
        page.wait_for_function("() => window.__violations.length >= 2")
        assert page.evaluate("() => window.__injected === true") is False
        assert "__injected" in page.content(), "the page was not changed"
        violations = page.evaluate("() => window.__violations")
    assert violations, "the policy reported nothing"
    assert all(v.startswith("script-src") for v in violations), violations
