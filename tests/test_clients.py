"""Pooled HTTP clients (dingmw/clients.py): built once, never per request.

Logins go over real loopback HTTP to the fake DingTalk with dingmw's default
networking (no `transport=`), so the clients counted are the ones production
builds. A new `httpx` client builds an SSL context (`ssl.create_default_context`)
and a connection pool; both are counted.
"""

from __future__ import annotations

import asyncio
import os
import socketserver
import ssl
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import dingmw
from dingmw import ASGIMiddleware as ASGI
from dingmw import WSGIMiddleware, clients
from dingmw.config import HubClient
from dingmw.hub import create_app
from dingmw.testing import ZHANGSAN, FakeDingTalk

from .conftest import FakeServer
from .support import TestClient, asgi_app, login, make_settings, wsgi_app

LOGINS = 12


PACKAGE = str(Path(dingmw.__file__).parent)
NOT_DINGMW = (str(Path(dingmw.__file__).parent / "testing"),)  # the fake is DingTalk's side


def called_by_dingmw() -> bool:
    """Whether dingmw's own code (not the test, not the fake) is on the call stack."""
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_code.co_filename
        if name.startswith(PACKAGE) and not name.startswith(NOT_DINGMW):
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    """Counts the SSL contexts and httpx clients dingmw builds, with fresh shared pools."""
    counts = {"ssl": 0, "async_clients": 0, "sync_clients": 0}
    real_context = ssl.create_default_context
    real_async_init = httpx.AsyncClient.__init__
    real_sync_init = httpx.Client.__init__

    def context(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        counts["ssl"] += called_by_dingmw()
        return real_context(*args, **kwargs)

    def async_init(self: httpx.AsyncClient, *args: Any, **kwargs: Any) -> None:
        counts["async_clients"] += called_by_dingmw()
        real_async_init(self, *args, **kwargs)

    def sync_init(self: httpx.Client, *args: Any, **kwargs: Any) -> None:
        counts["sync_clients"] += called_by_dingmw()
        real_sync_init(self, *args, **kwargs)

    monkeypatch.setattr(ssl, "create_default_context", context)
    monkeypatch.setattr(httpx.AsyncClient, "__init__", async_init)
    monkeypatch.setattr(httpx.Client, "__init__", sync_init)
    monkeypatch.setattr(clients, "_SHARED_ASYNC", {})
    monkeypatch.setattr(clients, "_SHARED_SYNC", {})
    clients.ssl_context.cache_clear()
    yield counts
    clients.ssl_context.cache_clear()


def served_settings(fake_server: FakeServer, **overrides: Any) -> Any:
    url = fake_server.url
    return make_settings(oapi_url=url, api_url=url, login_url=url, **overrides)


def test_asgi_logins_share_one_client_and_one_ssl_context(
    fake_server: FakeServer, counted: dict[str, int]
) -> None:
    app = ASGI(asgi_app(), served_settings(fake_server))
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as browser:
        for _ in range(LOGINS):
            browser.cookies.clear()
            response = login(browser, fake_server.fake, ZHANGSAN.unionid)
            assert response.status_code == 302, response.text
            assert browser.get("/private").json()["unionid"] == ZHANGSAN.unionid
        assert counted["async_clients"] == 1
    assert counted["ssl"] == 1


def test_wsgi_logins_share_one_client_and_one_ssl_context(
    fake_server: FakeServer, counted: dict[str, int]
) -> None:
    flask = wsgi_app()
    middleware = WSGIMiddleware(flask.wsgi_app, served_settings(fake_server))
    flask.wsgi_app = middleware  # type: ignore[method-assign]
    browser = httpx.Client(transport=httpx.WSGITransport(app=flask), base_url="http://testserver")
    for _ in range(LOGINS):
        browser.cookies.clear()
        response = login(browser, fake_server.fake, ZHANGSAN.unionid)
        assert response.status_code == 302, response.text
    assert counted["sync_clients"] == 1
    assert counted["ssl"] == 1
    middleware.close()
    assert middleware.client().is_closed is False  # a closed pool opens a new client on use
    middleware.close()


def test_flows_without_http_calls_never_build_a_client(counted: dict[str, int]) -> None:
    """The hub's /token and /userinfo call no one: no client, no SSL context."""
    site = HubClient(
        client_id="site",
        client_secret="site-secret-0123456789",
        redirect_urls=("https://site.example/dingtalk/callback",),
    )
    hub = create_app(make_settings(hub_clients=(site,)))
    with TestClient(hub, base_url="http://hub.test") as browser:
        for _ in range(LOGINS):
            token = browser.post(
                "/dingtalk/token",
                content=b"code=nope&state=x",
                auth=("site", "site-secret-0123456789"),
            )
            assert token.status_code == 400
            assert token.json()["error"] == "invalid_grant"
            userinfo = browser.get("/dingtalk/userinfo", headers={"authorization": "nope"})
            assert userinfo.status_code == 401
        assert counted["async_clients"] == 0
    assert counted["ssl"] == 0


def test_one_async_client_per_event_loop_and_lifespan_closes_it(
    fake_server: FakeServer,
) -> None:
    pool = clients.AsyncClients(timeout=5)
    seen: list[httpx.AsyncClient] = []

    async def use() -> None:
        first, second = pool.get(), pool.get()
        assert first is second
        seen.append(first)
        response = await pool.send(httpx.Request("GET", f"{fake_server.url}/gettoken"))
        assert response.status_code == 200
        await pool.aclose()
        assert first.is_closed

    threads = [threading.Thread(target=asyncio.run, args=(use(),)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(seen) == 3
    assert len({id(c) for c in seen}) == 3  # one per loop, never shared across loops


def test_lifespan_shutdown_closes_the_pooled_client(fake_server: FakeServer) -> None:
    app = ASGI(asgi_app(), served_settings(fake_server))
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as browser:
        assert login(browser, fake_server.fake, ZHANGSAN.unionid).status_code == 302
        portal = browser.portal
        assert portal is not None
        client = portal.call(_current_client, app)
        assert not client.is_closed
    assert client.is_closed


async def _current_client(app: Any) -> httpx.AsyncClient:
    client: httpx.AsyncClient = app.effects.clients.get()
    return client


def test_a_callers_client_is_used_and_never_closed(counted: dict[str, int]) -> None:
    fake = FakeDingTalk()
    given = httpx.AsyncClient(transport=fake.transport())
    app = ASGI(asgi_app(), make_settings(), client=given)
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as browser:
        assert login(browser, fake, ZHANGSAN.unionid).status_code == 302
    assert counted["async_clients"] == 0
    assert not given.is_closed


def test_sync_pool_is_remade_in_a_forked_child(monkeypatch: pytest.MonkeyPatch) -> None:
    pool = clients.SyncClients(
        timeout=5, transport=httpx.MockTransport(lambda r: httpx.Response(204))
    )
    parent = pool.get()
    assert pool.get() is parent
    monkeypatch.setattr(os, "getpid", lambda: -1)  # as if in a pre-forked worker
    child = pool.get()
    assert child is not parent
    assert pool.send(httpx.Request("GET", "https://x.example/")).status_code == 204


class LookupRecorder:
    """A `sys.meta_path` finder that only records the modules Python looks for (misses of
    `sys.modules`); a module found once is never looked for again, one missing is every time."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        self.names.append(name)


def test_a_login_looks_for_no_module_once_warm(
    fake_server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """httpcore asks `import sniffio` on every async lock; were sniffio missing, each of a
    login's calls would search sys.path for it (~0.5 ms of CPU every time)."""
    app = ASGI(asgi_app(), served_settings(fake_server))
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as browser:
        assert login(browser, fake_server.fake, ZHANGSAN.unionid).status_code == 302
        recorder = LookupRecorder()
        monkeypatch.setattr(sys, "meta_path", [recorder, *sys.meta_path])
        browser.cookies.clear()
        assert login(browser, fake_server.fake, ZHANGSAN.unionid).status_code == 302
    assert recorder.names == []


class KeepAliveServer(socketserver.ThreadingTCPServer):
    """HTTP/1.1 on loopback that answers each connection's first request and, like a
    server whose keep-alive timeout ran out just then, closes the connection when a
    second request arrives on it (or, with `answer_first=False`, answers nothing)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, *, answer_first: bool = True) -> None:
        super().__init__(("127.0.0.1", 0), KeepAliveHandler)
        self.answer_first = answer_first
        self.connections = 0
        self.requests = 0
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class KeepAliveHandler(socketserver.StreamRequestHandler):
    server: KeepAliveServer

    def handle(self) -> None:
        self.server.connections += 1
        served = 0
        while True:
            line = self.rfile.readline()
            while line not in (b"\r\n", b""):
                line = self.rfile.readline()
            if line == b"":
                return
            self.server.requests += 1
            if served or not self.server.answer_first:
                return  # closed as the request arrived: no answer
            served += 1
            self.wfile.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            self.wfile.flush()


@pytest.fixture
def keepalive() -> Iterator[KeepAliveServer]:
    server = KeepAliveServer()
    yield server
    server.stop()


def test_sync_request_on_a_connection_the_server_just_closed_is_sent_again(
    keepalive: KeepAliveServer,
) -> None:
    pool = clients.SyncClients(timeout=5)
    try:
        assert pool.send(httpx.Request("GET", keepalive.url)).text == "ok"
        assert pool.send(httpx.Request("GET", keepalive.url)).text == "ok"
    finally:
        pool.close()
    assert (keepalive.connections, keepalive.requests) == (2, 3)


def test_async_request_on_a_connection_the_server_just_closed_is_sent_again(
    keepalive: KeepAliveServer,
) -> None:
    async def twice() -> list[str]:
        pool = clients.AsyncClients(timeout=5)
        try:
            return [(await pool.send(httpx.Request("GET", keepalive.url))).text for _ in "ab"]
        finally:
            await pool.aclose()

    assert asyncio.run(twice()) == ["ok", "ok"]
    assert (keepalive.connections, keepalive.requests) == (2, 3)


def test_a_failure_on_a_new_connection_is_not_retried() -> None:
    server = KeepAliveServer(answer_first=False)
    pool = clients.SyncClients(timeout=5)
    try:
        with pytest.raises(httpx.RemoteProtocolError):
            pool.send(httpx.Request("GET", server.url))
    finally:
        pool.close()
        server.stop()
    assert (server.connections, server.requests) == (1, 1)


def test_a_storm_waits_for_a_free_connection_and_never_opens_more_than_the_cap(
    fake_server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(clients, "CONNECTIONS", 4)
    pool = clients.AsyncClients(timeout=5)

    async def storm() -> list[int]:
        try:
            replies = await asyncio.gather(
                *(pool.send(httpx.Request("GET", f"{fake_server.url}/gettoken")) for _ in range(40))
            )
            slots = pool._slots()
            assert sorted(slots.free) == [0, 1, 2, 3]
            assert sum(c is not None for c in slots.clients) <= 4
            return [r.status_code for r in replies]
        finally:
            await pool.aclose()

    assert asyncio.run(storm()) == [200] * 40


def test_the_shared_clients_keep_no_cookie_from_one_call_to_the_next() -> None:
    """They serve every person's login: a cookie DingTalk's side sets must not ride along."""
    sent: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers.get("cookie"))
        return httpx.Response(200, headers={"set-cookie": "lb=node-7; Path=/"})

    pool = clients.SyncClients(timeout=5, transport=httpx.MockTransport(handler))
    for _ in "ab":
        pool.send(httpx.Request("GET", "https://oapi.dingtalk.example/gettoken"))

    async def twice() -> None:
        apool = clients.AsyncClients(timeout=5, transport=httpx.MockTransport(handler))
        for _ in "ab":
            await apool.send(httpx.Request("GET", "https://oapi.dingtalk.example/gettoken"))

    asyncio.run(twice())
    assert sent == [None] * 4
