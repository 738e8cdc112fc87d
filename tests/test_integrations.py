"""The framework integrations, each logged in through its example: `dingmw.flask`
(extension and decorators), `dingmw.fastapi` (dependencies, `root_path`, `add_middleware`,
lifespan, a configuration error at start-up) and Starlette's `requires(redirect=...)`."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI, WebSocket
from flask import Flask

from dingmw import ASGIMiddleware, ConfigError, Identity
from dingmw.fastapi import CurrentIdentity, RequiredIdentity, require
from dingmw.fastapi import DingTalk as DingTalkFastAPI
from dingmw.flask import DingTalk
from dingmw.testing import LISI, ZHANGSAN, FakeDingTalk

from .support import HTML, TestClient, load_example, login, make_settings, page_config

JSON = {"accept": "application/json"}


# Flask ------------------------------------------------------------------------------------


@pytest.fixture
def flask_client(fake: FakeDingTalk) -> Iterator[httpx.Client]:
    settings = make_settings(public_paths=("/health", "/health/*"), enrich="detail")
    app = load_example("flask_app").create_app(settings, transport=fake.transport())
    transport = httpx.WSGITransport(app=app)
    with httpx.Client(transport=transport, base_url="http://testserver") as client:
        yield client


def test_flask_example_logs_in_and_the_decorator_admits_a_department(
    flask_client: httpx.Client, fake: FakeDingTalk
) -> None:
    assert flask_client.get("/health").text == "ok"
    assert flask_client.get("/", headers=HTML).status_code == 302
    assert login(flask_client, fake, ZHANGSAN.unionid, next_path="/").status_code == 302
    assert "你好, 张三" in flask_client.get("/").text
    assert flask_client.get("/admin").text == "admin area"  # 张三 is in department 100


def test_flask_require_refuses_another_department(
    flask_client: httpx.Client, fake: FakeDingTalk
) -> None:
    login(flask_client, fake, LISI.unionid, next_path="/")
    page = flask_client.get("/admin", headers=HTML)
    assert page.status_code == 403
    assert 'data-reason="dept_not_allowed"' in page.text
    api = flask_client.get("/admin", headers=JSON)
    assert api.status_code == 403
    assert api.json()["error"] == "dept_not_allowed"


def test_flask_login_required_on_a_public_path(
    flask_client: httpx.Client, fake: FakeDingTalk
) -> None:
    browser = flask_client.get("/health/me", headers=HTML)
    assert browser.status_code == 302
    assert browser.headers["location"] == "/dingtalk/login?next=/health/me"
    api = flask_client.get("/health/me", headers=JSON)
    assert api.status_code == 401
    assert api.json() == {"error": "login_required", "login_url": "/dingtalk/login?next=/health/me"}
    assert login(flask_client, fake, ZHANGSAN.unionid, next_path="/health/me").headers[
        "location"
    ] == ("/health/me")
    assert flask_client.get("/health/me").text == "checked by 张三"


def test_flask_extension_reads_dingmw_keys_from_app_config(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("DINGMW_")]:
        monkeypatch.delenv(name)
    app = Flask("configured")
    with pytest.raises(ConfigError, match="DINGMW_APP_KEY"):
        DingTalk(app)
    app.config.update(
        DINGMW_APP_KEY="key-from-config",
        DINGMW_APP_SECRET="secret-from-config",
        DINGMW_SECRET_KEY="k" * 40,
    )
    extension = DingTalk(app)
    assert extension.middleware is not None
    assert extension.middleware.settings.app_key == "key-from-config"
    assert app.wsgi_app is extension.middleware


def test_flask_app_config_takes_lists_as_django_settings_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`app.config` values that are lists are the comma-separated lists `DINGMW_*` takes (the
    keys in their order: the first seals)."""
    for name in [n for n in os.environ if n.startswith("DINGMW_")]:
        monkeypatch.delenv(name)
    app = Flask("lists")
    app.config.update(
        DINGMW_APP_KEY="key",
        DINGMW_APP_SECRET="secret",
        DINGMW_SECRET_KEY=["n" * 40, "o" * 40],
        DINGMW_PUBLIC_PATHS=["/health", "/static/*"],
        DINGMW_ALLOWED_DEPT_IDS=[100, 200],
        DINGMW_ENRICH="detail",
        DINGMW_CORP_ID="dingcorp",
    )
    middleware = DingTalk(app).middleware
    assert middleware is not None
    settings = middleware.settings
    assert settings.secret_keys == ("n" * 40, "o" * 40)
    assert settings.public_paths == ("/health", "/static/*")
    assert settings.allowed_dept_ids == frozenset({100, 200})


# FastAPI ----------------------------------------------------------------------------------


@pytest.fixture
def fastapi_example(fake: FakeDingTalk) -> Iterator[tuple[TestClient, FastAPI]]:
    settings = make_settings(public_paths=("/health", "/health/*"), enrich="detail")
    app = load_example("fastapi_app").create_app(settings, transport=fake.transport())
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
        yield client, app


def test_fastapi_example_dependencies(
    fastapi_example: tuple[TestClient, FastAPI], fake: FakeDingTalk
) -> None:
    client, app = fastapi_example
    assert app.state.started == ["up"]  # the app's lifespan ran behind add_middleware
    assert client.get("/health").json() == {"ok": True, "who": None}
    assert client.get("/", headers=HTML).status_code == 302
    assert login(client, fake, ZHANGSAN.unionid, next_path="/").status_code == 302
    assert client.get("/").json() == {"hello": "张三", "userid": "zhangsan"}
    assert client.get("/health").json() == {"ok": True, "who": ZHANGSAN.unionid}
    assert client.get("/admin").json() == "admin area"


def test_fastapi_require_identity_answers_as_the_middleware(
    fastapi_example: tuple[TestClient, FastAPI], fake: FakeDingTalk
) -> None:
    client, _ = fastapi_example
    api = client.get("/health/me", headers=JSON)
    assert api.status_code == 401
    assert api.json() == {"error": "login_required", "login_url": "/dingtalk/login?next=/health/me"}
    browser = client.get("/health/me", headers=HTML)
    assert browser.status_code == 302
    assert browser.headers["location"] == "/dingtalk/login?next=/health/me"
    assert login(client, fake, ZHANGSAN.unionid, next_path="/health/me").headers["location"] == (
        "/health/me"
    )
    assert client.get("/health/me").json() == {"checked_by": "张三"}


def test_fastapi_require_refuses_another_department(
    fastapi_example: tuple[TestClient, FastAPI], fake: FakeDingTalk
) -> None:
    client, _ = fastapi_example
    login(client, fake, LISI.unionid, next_path="/")
    api = client.get("/admin", headers=JSON)
    assert api.status_code == 403
    assert api.json()["error"] == "dept_not_allowed"
    page = client.get("/admin", headers=HTML)
    assert page.status_code == 403
    assert 'data-reason="dept_not_allowed"' in page.text


# FastAPI deprecates its `root_path` argument (in favour of the server's) but still honours it.
@pytest.mark.filterwarnings("ignore:The `root_path` parameter is deprecated")
def test_fastapi_root_path_is_kept_in_the_login_redirect(fake: FakeDingTalk) -> None:
    api = FastAPI(root_path="/app")

    @api.get("/x")
    async def x() -> str:
        return "x"

    app = ASGIMiddleware(api, make_settings(), transport=fake.transport())
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
        response = client.get("/x", headers=HTML)
        assert response.status_code == 302
        assert response.headers["location"] == "/app/dingtalk/login?next=/app/x"
        config = page_config(client.get("/dingtalk/login", headers=HTML))
        assert config["redirect_uri"] == "http://testserver/app/dingtalk/callback"


def test_the_servers_root_path_is_kept_in_the_login_redirect(fake: FakeDingTalk) -> None:
    app = FastAPI()
    DingTalkFastAPI(app, make_settings(), transport=fake.transport())
    with TestClient(
        app, base_url="http://testserver", root_path="/app", follow_redirects=False
    ) as client:
        response = client.get("/x", headers=HTML)
        assert response.headers["location"] == "/app/dingtalk/login?next=/app/x"


BARE_ADD_MIDDLEWARE = textwrap.dedent(
    """
    import uvicorn
    from fastapi import FastAPI
    from dingmw import ASGIMiddleware

    app = FastAPI()
    app.add_middleware(ASGIMiddleware)  # settings from DINGMW_*, read when Starlette builds it
    uvicorn.run(app, host="127.0.0.1", port=0)
    """
)


def test_a_configuration_error_under_add_middleware_stops_the_server() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DINGMW_")}
    env["DINGMW_APP_KEY"] = "only-the-key"
    out = subprocess.run(
        [sys.executable, "-c", BARE_ADD_MIDDLEWARE],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode != 0
    assert "dingmw: configuration error" in out.stderr
    assert "DINGMW_APP_SECRET" in out.stderr
    assert "Application startup failed" in out.stderr


def test_add_middleware_with_good_settings_runs_the_app_lifespan(
    monkeypatch: pytest.MonkeyPatch, fake: FakeDingTalk
) -> None:
    monkeypatch.setenv("DINGMW_APP_KEY", "k")
    monkeypatch.setenv("DINGMW_APP_SECRET", "s")
    monkeypatch.setenv("DINGMW_SECRET_KEY", "x" * 40)
    app = load_example("fastapi_app").create_app()  # DingTalk(app) reads the environment
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
        assert app.state.started == ["up"]
        assert client.get("/", headers=JSON).status_code == 401


# Starlette --------------------------------------------------------------------------------


def test_starlette_requires_redirect_lands_on_the_original_page(fake: FakeDingTalk) -> None:
    example = load_example("starlette_app")
    settings = make_settings(public_paths=("/health", "/public/*", "/login"))
    app = ASGIMiddleware(example.inner, settings, transport=fake.transport())
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
        first = client.get("/public/report", headers=HTML)  # Starlette: to the route "login"
        assert first.status_code in (302, 303, 307)
        handover = client.get(first.headers["location"], headers=HTML)
        assert handover.headers["location"].startswith("/dingtalk/login?next=http")
        page = client.get(handover.headers["location"], headers=HTML)
        config: dict[str, Any] = page_config(page)
        callback = client.get(fake.scan(config["authorize_url"], ZHANGSAN.unionid), headers=HTML)
        assert callback.status_code == 302
        assert callback.headers["location"] == "/public/report"
        assert client.get("/public/report").text == "report for 张三"


@pytest.mark.parametrize(
    ("next_url", "lands_on"),
    [
        ("http://testserver/public/report?x=1", "/public/report?x=1"),
        ("http://evil.example/public/report", "/"),
        ("http://testserver@evil.example/x", "/"),
        ("https://testserver/x", "/"),  # another scheme is another origin
    ],
)
def test_an_absolute_next_is_kept_only_on_this_origin(
    fake: FakeDingTalk, next_url: str, lands_on: str
) -> None:
    settings = make_settings()
    app = ASGIMiddleware(load_example("starlette_app").inner, settings, transport=fake.transport())
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
        assert login(client, fake, ZHANGSAN.unionid, next_path=next_url).headers["location"] == (
            lands_on
        )


# Mounted apps and websockets ----------------------------------------------------------------


def mounted_fastapi(fake: FakeDingTalk) -> FastAPI:
    """`DingTalk(app)` on the outer app; the dependencies live in a mounted sub-app."""
    sub = FastAPI()

    @sub.get("/public/who")
    async def who(me: RequiredIdentity) -> str:
        return me.display_name

    @sub.get("/admin", dependencies=[Depends(require(users=[ZHANGSAN.unionid]))])
    async def admin() -> str:
        return "admin"

    @sub.websocket("/public/ws")
    async def ws(websocket: WebSocket, me: CurrentIdentity) -> None:
        await websocket.accept()
        await websocket.send_text(me.display_name if me else "nobody")
        await websocket.close()

    @sub.websocket("/public/ws-required")
    async def ws_required(
        websocket: WebSocket, me: Annotated[Identity, Depends(require(users=[ZHANGSAN.unionid]))]
    ) -> None:
        await websocket.accept()
        await websocket.send_text(me.display_name)
        await websocket.close()

    app = FastAPI()
    app.mount("/sub", sub)
    DingTalkFastAPI(app, make_settings(public_paths=("/sub/public/*",)), transport=fake.transport())
    return app


def test_fastapi_dependencies_in_a_mounted_sub_app_answer_as_the_middleware(
    fake: FakeDingTalk,
) -> None:
    with TestClient(mounted_fastapi(fake), follow_redirects=False) as client:
        anonymous = client.get("/sub/public/who", headers=JSON)
        assert anonymous.status_code == 401
        assert anonymous.json()["error"] == "login_required"
        login(client, fake, LISI.unionid, next_path="/")
        refused = client.get("/sub/admin", headers=JSON)
        assert refused.status_code == 403
        assert refused.json()["error"] == "user_not_allowed"
        assert client.get("/sub/public/who").json() == "Li Si"
        client.cookies.clear()
        login(client, fake, ZHANGSAN.unionid, next_path="/")
        assert client.get("/sub/admin").json() == "admin"


def test_fastapi_dependencies_on_websocket_routes(fake: FakeDingTalk) -> None:
    from starlette.websockets import WebSocketDisconnect

    with TestClient(mounted_fastapi(fake), follow_redirects=False) as client:
        with client.websocket_connect("/sub/public/ws") as ws:
            assert ws.receive_text() == "nobody"
        with (
            pytest.raises(WebSocketDisconnect) as closed,
            client.websocket_connect("/sub/public/ws-required"),
        ):
            pass
        assert closed.value.code == 1008  # as the middleware closes its own refusals
        login(client, fake, ZHANGSAN.unionid, next_path="/")
        with client.websocket_connect("/sub/public/ws") as ws:
            assert ws.receive_text() == "张三"
        with client.websocket_connect("/sub/public/ws-required") as ws:
            assert ws.receive_text() == "张三"


def test_a_starlette_mount_of_the_middleware_keeps_url_for(fake: FakeDingTalk) -> None:
    """`Mount("/app", ASGIMiddleware(inner))`: names inside resolve for `url_for`, and
    `login_as` finds the middleware through the mount."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount, Route

    from dingmw.testing import login_as

    async def home(request: Request) -> PlainTextResponse:
        return PlainTextResponse(str(request.url_for("home")))

    inner = Starlette(routes=[Route("/", home, name="home")])
    outer = Starlette(
        routes=[Mount("/app", ASGIMiddleware(inner, make_settings(), transport=fake.transport()))]
    )
    with TestClient(outer, base_url="http://testserver", follow_redirects=False) as client:
        assert client.get("/app/", headers=HTML).status_code == 302
        login_as(client, ZHANGSAN)
        page = client.get("/app/")
        assert page.status_code == 200, page.text
        assert page.text == "http://testserver/app/"


def test_cors_middleware_outside_dingmw_answers_the_preflight(fake: FakeDingTalk) -> None:
    """As the quick start shows: CORS added after `DingTalk(app)`, so outermost."""
    from fastapi.middleware.cors import CORSMiddleware

    app = FastAPI()

    @app.get("/private")
    async def private(me: RequiredIdentity) -> str:
        return me.display_name

    DingTalkFastAPI(app, make_settings(), transport=fake.transport())
    origin = "https://app.example.com"
    app.add_middleware(
        CORSMiddleware, allow_origins=[origin], allow_credentials=True, allow_methods=["*"]
    )
    with TestClient(app, follow_redirects=False) as client:
        preflight = client.options(
            "/private", headers={"origin": origin, "access-control-request-method": "GET"}
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == origin
        refused = client.get("/private", headers={**JSON, "origin": origin})
        assert refused.status_code == 401  # no session: the page's script can read why
        assert refused.headers["access-control-allow-origin"] == origin
        login(client, fake, ZHANGSAN.unionid, next_path="/")
        allowed = client.get("/private", headers={"origin": origin})
        assert allowed.json() == "张三"
        assert allowed.headers["access-control-allow-credentials"] == "true"
