"""What only one adapter does: ASGI scopes (lifespan, websockets, Starlette's request.user)
and WSGI environs (REMOTE_USER, PEP 3333 paths)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from dingmw import ASGIMiddleware, WSGIMiddleware, get_identity
from dingmw.testing import ZHANGSAN, FakeDingTalk

from .support import HTML, TestClient, login, make_settings


async def user_info(request: Request) -> JSONResponse:
    return JSONResponse(
        {
            "authenticated": request.user.is_authenticated,
            "display": request.user.display_name,
            "scopes": request.auth.scopes,
            "identity": get_identity(request.scope) is not None,
        }
    )


@requires("authenticated")
async def needs_auth(request: Request) -> JSONResponse:
    return JSONResponse({"userid": request.user.userid, "unionid": request.user.identity})


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    identity = get_identity(websocket)
    await websocket.send_json({"unionid": identity.unionid if identity else None})
    await websocket.close()


def starlette_app(events: list[str]) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        events.append("startup")
        yield
        events.append("shutdown")

    return Starlette(
        routes=[
            Route("/public/user", user_info),
            Route("/user", user_info),
            Route("/needs-auth", needs_auth),
            WebSocketRoute("/ws", echo),
        ],
        lifespan=lifespan,
    )


@pytest.fixture
def asgi(fake: FakeDingTalk) -> tuple[TestClient, list[str]]:
    events: list[str] = []
    settings = make_settings(enrich="detail", public_paths=("/public/*",))
    app = ASGIMiddleware(starlette_app(events), settings, transport=fake.transport())
    return TestClient(app, base_url="http://testserver", follow_redirects=False), events


def test_lifespan_passes_through(asgi: tuple[TestClient, list[str]]) -> None:
    client, events = asgi
    with client:
        assert events == ["startup"]
    assert events == ["startup", "shutdown"]


def test_starlette_sees_an_anonymous_user_on_public_paths(
    asgi: tuple[TestClient, list[str]],
) -> None:
    client, _ = asgi
    with client:
        data = client.get("/public/user").json()
    assert data == {"authenticated": False, "display": "", "scopes": [], "identity": False}


def test_starlette_sees_the_logged_in_user(
    asgi: tuple[TestClient, list[str]], fake: FakeDingTalk
) -> None:
    client, _ = asgi
    with client:
        login(client, fake, ZHANGSAN.unionid)
        data = client.get("/user").json()
        assert data == {
            "authenticated": True,
            "display": "张三",
            "scopes": ["authenticated"],
            "identity": True,
        }
        public = client.get("/public/user").json()
        assert public["authenticated"] is True  # identity injected on public paths too
        assert client.get("/needs-auth").json() == {
            "userid": "zhangsan",
            "unionid": ZHANGSAN.unionid,
        }


def test_each_request_sees_its_own_person_and_middleware(fake: FakeDingTalk) -> None:
    """The hot path keeps each cached session's scope keys: two people alternating on one
    middleware, and one person on two middlewares, each get their own, request after
    request (the first request of a session builds them, the next ones reuse them)."""
    from dingmw.testing import LISI, login_as

    seen: list[tuple[str, str, object]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        identity = get_identity(scope)
        assert identity is not None
        seen.append((identity.unionid, scope["user"].dingtalk.unionid, scope["dingmw.middleware"]))
        await JSONResponse({})(scope, receive, send)

    settings = make_settings()
    first = ASGIMiddleware(app, settings, transport=fake.transport())
    second = ASGIMiddleware(app, settings, transport=fake.transport())
    cookies = {p.unionid: login_as(first, p).value for p in (ZHANGSAN, LISI)}
    name = settings.cookie_name
    one, two = TestClient(first), TestClient(second)
    for _ in range(3):
        for unionid, value in cookies.items():
            assert one.get("/", headers={"cookie": f"{name}={value}"}).status_code == 200
            assert seen.pop() == (unionid, unionid, first)
    value = cookies[ZHANGSAN.unionid]
    for _ in range(2):
        assert two.get("/", headers={"cookie": f"{name}={value}"}).status_code == 200
        assert seen.pop() == (ZHANGSAN.unionid, ZHANGSAN.unionid, second)


def test_the_weight_of_a_cached_session_covers_its_hot_path_keys() -> None:
    """What the byte bound counts for a cached session (`Entry.size`) covers its memory once
    the hot path has also built its scope keys (the second request of each session)."""
    import asyncio
    import gc
    import tracemalloc

    from .support import FULL_IDENTITY

    settings = make_settings()
    issuer = ASGIMiddleware(JSONResponse({}), settings)
    values = [
        issuer.core.sessions.issue(FULL_IDENTITY, secure=False).split(";", 1)[0].encode()
        for _ in range(201)
    ]
    middleware = ASGIMiddleware(JSONResponse({}), settings)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        pass

    async def twice(cookie: bytes) -> None:
        for _ in range(2):
            scope = {
                **{"type": "http", "method": "GET", "path": "/", "root_path": ""},
                **{"query_string": b"", "scheme": "http", "server": ("testserver", 80)},
                "headers": [(b"host", b"testserver"), (b"cookie", cookie)],
            }
            await middleware(scope, receive, send)

    async def run() -> int:
        await twice(values[0])  # what a first request sets up once, outside the count
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for value in values[1:]:
                await twice(value)
            gc.collect()
            return tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()

    used = asyncio.run(run())
    entries = middleware.core.sessions._cache.entries()[1:]
    assert len(entries) == 200
    assert all(entry.forward.extra for entry in entries)  # the hot path ran for each
    assert used <= sum(entry.size for entry in entries)


def test_websocket_without_session_is_refused(asgi: tuple[TestClient, list[str]]) -> None:
    client, _ = asgi
    with client, pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect("/ws"):
        pass  # pragma: no cover - the handshake is refused
    assert refused.value.code == 1008


def test_websocket_with_session_sees_the_identity(
    asgi: tuple[TestClient, list[str]], fake: FakeDingTalk
) -> None:
    client, _ = asgi
    with client:
        login(client, fake, ZHANGSAN.unionid)
        with client.websocket_connect("/ws") as ws:
            assert ws.receive_json() == {"unionid": ZHANGSAN.unionid}


def test_mounted_app_uses_its_root_path(fake: FakeDingTalk) -> None:
    inner = ASGIMiddleware(starlette_app([]), make_settings(), transport=fake.transport())
    outer = Starlette(routes=[])
    outer.mount("/app", inner)
    with TestClient(outer, base_url="http://testserver", follow_redirects=False) as client:
        response = client.get("/app/user", headers=HTML)
        assert response.status_code == 302
        assert response.headers["location"] == "/app/dingtalk/login?next=/app/user"
        page = client.get("/app/dingtalk/login?next=/app/user", headers=HTML)
        assert "Path=/app/dingtalk/" in page.headers["set-cookie"]
        assert "http://testserver/app/dingtalk/callback" in page.text


# WSGI ----------------------------------------------------------------------------------


def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    identity = environ.get("dingtalk.identity")
    body = "|".join(
        [
            environ.get("REMOTE_USER", "-"),
            identity.unionid if identity else "-",
            environ["PATH_INFO"],
        ]
    )
    start_response("200 OK", [("content-type", "text/plain; charset=utf-8")])
    return [body.encode("utf-8")]


def wsgi_client(fake: FakeDingTalk, **settings: Any) -> httpx.Client:
    app = WSGIMiddleware(wsgi_app, make_settings(**settings), transport=fake.transport())
    return httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://testserver")


def test_remote_user_is_the_userid_when_known(fake: FakeDingTalk) -> None:
    client = wsgi_client(fake, enrich="detail")
    login(client, fake, ZHANGSAN.unionid)
    assert client.get("/x").text == f"zhangsan|{ZHANGSAN.unionid}|/x"


def test_remote_user_is_the_unionid_otherwise(fake: FakeDingTalk) -> None:
    client = wsgi_client(fake)
    login(client, fake, ZHANGSAN.unionid)
    assert client.get("/x").text == f"{ZHANGSAN.unionid}|{ZHANGSAN.unionid}|/x"


def test_anonymous_public_request_has_no_remote_user(fake: FakeDingTalk) -> None:
    assert wsgi_client(fake).get("/health").text == "-|-|/health"


def test_non_ascii_paths_are_protected_and_returned(fake: FakeDingTalk) -> None:
    client = wsgi_client(fake)
    response = client.get("/报告", headers=HTML)
    assert response.status_code == 302
    # next is a query value: the percent-encoded path is encoded once more.
    assert response.headers["location"] == "/dingtalk/login?next=/%25E6%258A%25A5%25E5%2591%258A"
    done = login(client, fake, ZHANGSAN.unionid, next_path="/报告")
    assert done.headers["location"] == "/%E6%8A%A5%E5%91%8A"
    assert client.get("/报告").text.endswith("|/报告")


def test_head_has_no_body(fake: FakeDingTalk) -> None:
    response = wsgi_client(fake).head("/dingtalk/login", headers=HTML)
    assert response.status_code == 200
    assert response.content == b""
