"""Test helpers: settings pointed at the fake DingTalk, and one browser-like
`httpx.Client` per adapter (Starlette's TestClient for ASGI, WSGITransport for WSGI),
so every scenario runs through both adapters unchanged."""

from __future__ import annotations

import importlib.util
import json
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
from flask import Flask, jsonify
from flask import request as flask_request
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

with warnings.catch_warnings():
    # Starlette's TestClient prefers httpx2; dingmw is built on httpx on purpose.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient as TestClient

from dingmw import ASGIMiddleware, Identity, Settings, WSGIMiddleware, get_identity
from dingmw.testing import DEFAULT_APP_KEY, DEFAULT_APP_SECRET, FakeDingTalk

SECRET_KEY = "test-secret-key-0123456789-abcdefghijklmnop"
OLD_SECRET_KEY = "old-secret-key-0123456789-abcdefghijklmnopq"
CONFIG_RE = re.compile(r'<script id="dingmw-config" type="application/json">(.*?)</script>', re.S)

ADAPTERS = ("asgi", "wsgi")
FLOWS = ("oauth2", "sns", "bycode")


# A person with every field filled in.
FULL_IDENTITY = Identity(
    unionid="u-1",
    openid="o-1",
    nick="小张",
    userid="zhangsan",
    name="张三",
    email="z@example.com",
    mobile="13800000000",
    avatar_url="https://example.com/a.png",
    corp_id="dingcorp",
    title="工程师",
    job_number="0042",
    dept_ids=(1, 2),
    flow="oauth2",
)


def make_settings(flow: str = "oauth2", **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "flow": flow,
        "app_key": DEFAULT_APP_KEY,
        "app_secret": DEFAULT_APP_SECRET,
        "secret_keys": (SECRET_KEY,),
        "public_paths": ("/health", "/static/*"),
    }
    values.update(overrides)
    return Settings(**values)


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load_example(name: str) -> ModuleType:
    """`examples/<name>.py`, imported as a module of its own."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def hub_settings(fake_url: str, **overrides: Any) -> Settings:
    """A hub's settings against a fake DingTalk served at `fake_url`: the hub's own session
    cookie and detail enrichment (the identity its sites receive)."""
    values: dict[str, Any] = {
        "app_key": DEFAULT_APP_KEY,
        "app_secret": DEFAULT_APP_SECRET,
        "secret_keys": (SECRET_KEY,),
        "cookie_name": "hub_session",
        "enrich": "detail",
        "oapi_url": fake_url,
        "api_url": fake_url,
        "login_url": fake_url,
    }
    values.update(overrides)
    return Settings(**values)


def page_config(response: httpx.Response) -> dict[str, Any]:
    """The `#dingmw-config` JSON block of a login page."""
    match = CONFIG_RE.search(response.text)
    assert match is not None, f"no #dingmw-config in the page: {response.text[:200]}"
    config: dict[str, Any] = json.loads(match.group(1))
    return config


# The wrapped apps answer the same JSON so scenarios can compare them.


async def _asgi_whoami(request: Request) -> JSONResponse:
    identity = get_identity(request)
    return JSONResponse(
        {
            "path": request.url.path,
            "unionid": identity.unionid if identity else None,
            "userid": identity.userid if identity else None,
            "display": request.user.display_name if request.user.is_authenticated else None,
        }
    )


async def _asgi_health(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def asgi_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/health", _asgi_health),
            Route("/{path:path}", _asgi_whoami, methods=["GET", "POST", "HEAD"]),
        ]
    )


def wsgi_app() -> Flask:
    app = Flask("parity", static_folder=None)

    @app.route("/health")
    def health() -> str:
        return "ok"

    @app.route("/", defaults={"path": ""}, methods=["GET", "POST", "HEAD"])
    @app.route("/<path:path>", methods=["GET", "POST", "HEAD"])
    def whoami(path: str) -> Any:
        identity = get_identity(flask_request)
        return jsonify(
            {
                "path": flask_request.path,
                "unionid": identity.unionid if identity else None,
                "userid": identity.userid if identity else None,
                "display": identity.display_name if identity else None,
            }
        )

    return app


ClientFactory = Callable[..., httpx.Client]


def build_client(adapter: str, settings: Settings, fake: FakeDingTalk, **kwargs: Any) -> Any:
    if adapter == "asgi":
        asgi = ASGIMiddleware(asgi_app(), settings, transport=fake.transport(), **kwargs)
        return TestClient(asgi, base_url="http://testserver", follow_redirects=False)
    flask = wsgi_app()
    flask.wsgi_app = WSGIMiddleware(  # type: ignore[method-assign]  # the documented way
        flask.wsgi_app, settings, transport=fake.transport(), **kwargs
    )
    return httpx.Client(
        transport=httpx.WSGITransport(app=flask),
        base_url="http://testserver",
        follow_redirects=False,
    )


HTML = {"accept": "text/html,application/xhtml+xml"}


def start_login(client: httpx.Client, next_path: str = "/private") -> dict[str, Any]:
    response = client.get("/dingtalk/login", params={"next": next_path}, headers=HTML)
    assert response.status_code == 200, response.text
    return page_config(response)


def login(
    client: httpx.Client, fake: FakeDingTalk, unionid: str, next_path: str = "/private"
) -> httpx.Response:
    """Log in as a person would: login page → scan in the fake → callback (its response)."""
    config = start_login(client, next_path)
    location = fake.scan(config["authorize_url"], unionid)
    return client.get(location, headers=HTML)


def command_of(op: object) -> str:
    """The store method a batched store effect stands for: get, put, take or delete."""
    from dingmw.core.effects import StoreDelete, StoreGet, StorePut, StoreTake

    names = {StoreGet: "get", StorePut: "put", StoreTake: "take", StoreDelete: "delete"}
    return names[type(op)]
