"""Cross-origin calls to the hub: a single-page app (a public client) exchanges its code and
reads the person from the browser; other origins cannot read the answers.

The rules in process (preflight, answers, who is named), then in a real headless Chromium:
a page on the public client's origin runs `fetch` against a served hub, and a page on another
origin is refused by the browser itself."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page

from dingmw.hub import Hub, HubClient, HubSettings, create_app
from dingmw.stores.memory import MemoryStore

from .conftest import ContextFactory, FakeServer
from .servers import free_socket, serve_asgi, serve_wsgi
from .support import TestClient, hub_settings, make_settings

HUB = "http://hub.test"
SPA = "http://spa.test"


def clients(spa: str) -> tuple[HubClient, ...]:
    return (
        HubClient(client_id="spa", public=True, redirect_urls=(f"{spa}/callback",)),
        HubClient(
            client_id="wiki",
            client_secret="wiki-secret-0123456789abcdef",
            redirect_urls=("http://wiki.test/dingtalk/callback",),
        ),
    )


@pytest.fixture
def browser() -> Iterator[TestClient]:
    hub: Hub = create_app(
        make_settings("oauth2"), HubSettings(clients=clients(SPA)), store=MemoryStore().aio()
    )
    with TestClient(hub, base_url=HUB, follow_redirects=False) as client:
        yield client


def preflight(browser: httpx.Client, path: str, origin: str, method: str) -> httpx.Response:
    return browser.options(
        path,
        headers={
            "origin": origin,
            "access-control-request-method": method,
            "access-control-request-headers": "authorization, content-type",
        },
    )


@pytest.mark.parametrize(
    ("path", "methods"), [("/dingtalk/token", "POST"), ("/dingtalk/userinfo", "GET, HEAD, POST")]
)
def test_a_public_clients_origin_passes_the_preflight(
    browser: httpx.Client, path: str, methods: str
) -> None:
    response = preflight(browser, path, SPA, "POST")
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == SPA
    assert response.headers["access-control-allow-methods"] == methods
    assert "authorization" in response.headers["access-control-allow-headers"]
    assert "access-control-allow-credentials" not in response.headers  # never the hub session
    assert response.headers["vary"] == "Origin"


@pytest.mark.parametrize(
    "origin", ["http://evil.test", "http://wiki.test", "null", "http://spa.test:8080"]
)
def test_other_origins_fail_the_preflight(browser: httpx.Client, origin: str) -> None:
    """Another site, a confidential client's (it keeps its secret on a server), a sandboxed
    frame, another port."""
    response = preflight(browser, "/dingtalk/token", origin, "POST")
    assert response.status_code == 403
    assert response.json()["error"] == "invalid_request"
    assert "access-control-allow-origin" not in response.headers


def test_the_answer_names_the_public_clients_origin_only(browser: httpx.Client) -> None:
    form = {"grant_type": "authorization_code", "code": "nope", "client_id": "spa"}
    allowed = browser.post("/dingtalk/token", data=form, headers={"origin": SPA})
    assert allowed.status_code == 400  # the code is unknown; the page can read why
    assert allowed.json()["error"] == "invalid_grant"
    assert allowed.headers["access-control-allow-origin"] == SPA
    other = browser.post("/dingtalk/token", data=form, headers={"origin": "http://evil.test"})
    assert "access-control-allow-origin" not in other.headers
    same_site = browser.post("/dingtalk/token", data=form)
    assert "access-control-allow-origin" not in same_site.headers
    userinfo = browser.get("/dingtalk/userinfo", headers={"origin": SPA, "authorization": "x"})
    assert userinfo.status_code == 401
    assert userinfo.headers["access-control-allow-origin"] == SPA


def test_public_metadata_is_readable_from_any_origin(browser: httpx.Client) -> None:
    response = browser.get("/dingtalk/jwks", headers={"origin": "http://anyone.test"})
    assert response.headers["access-control-allow-origin"] == "*"
    assert "vary" not in response.headers


def test_an_options_request_without_an_origin_is_no_preflight(browser: httpx.Client) -> None:
    response = browser.options("/dingtalk/token")
    assert response.status_code == 405
    assert "access-control-allow-origin" not in response.headers


def test_the_hubs_other_routes_allow_no_cross_origin_reads(browser: httpx.Client) -> None:
    """The login routes and logout are for the browser's own navigation, never `fetch`."""
    for path in ("/dingtalk/authorize", "/dingtalk/logout", "/dingtalk/me", "/healthz"):
        response = browser.get(path, headers={"origin": SPA})
        assert "access-control-allow-origin" not in response.headers, path


# In a real browser ----------------------------------------------------------------------------

PAGE = b"<!doctype html><title>spa</title><p>a single-page app</p>"


def static_page(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/html")])
    return [PAGE]


FETCH = """async ([hub, path, init]) => {
    try {
        const response = await fetch(hub + path, init);
        return {status: response.status, body: await response.json()};
    } catch (error) {
        return {failed: String(error)};
    }
}"""


@pytest.mark.browser
def test_a_single_page_app_calls_the_hub_from_the_browser(
    context_factory: ContextFactory, fake_server: FakeServer
) -> None:
    spa_sock, other_sock = free_socket(), free_socket()
    spa = f"http://127.0.0.1:{spa_sock.getsockname()[1]}"
    other = f"http://127.0.0.1:{other_sock.getsockname()[1]}"
    hub_app = create_app(hub_settings(fake_server.url), HubSettings(clients=clients(spa)))
    with contextlib.ExitStack() as stack:
        hub = stack.enter_context(serve_asgi(hub_app))
        stack.enter_context(serve_wsgi(static_page, sock=spa_sock))
        stack.enter_context(serve_wsgi(static_page, sock=other_sock))
        page: Page = context_factory().new_page()
        token_call = {
            "method": "POST",
            "headers": {"content-type": "application/x-www-form-urlencoded"},
            "body": "grant_type=authorization_code&code=nope&client_id=spa&redirect_uri=x",
        }
        userinfo_call = {"headers": {"authorization": "Bearer not-a-token"}}
        page.goto(spa + "/")
        answer = page.evaluate(FETCH, [hub, "/dingtalk/token", token_call])
        assert answer == {
            "status": 400,
            "body": {
                "error": "invalid_grant",
                "error_description": "the code is unknown or expired",
            },
        }
        answer = page.evaluate(FETCH, [hub, "/dingtalk/userinfo", userinfo_call])
        assert answer["status"] == 401  # the Authorization header passed the preflight
        assert answer["body"]["error"] == "invalid_token"
        page.goto(other + "/")  # another origin: the browser itself refuses to show the answer
        refused = page.evaluate(FETCH, [hub, "/dingtalk/token", token_call])
        assert "failed" in refused, refused
        refused = page.evaluate(FETCH, [hub, "/dingtalk/userinfo", userinfo_call])
        assert "failed" in refused, refused
