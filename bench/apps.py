"""The apps the benchmarks serve, as `apps:NAME` for uvicorn and gunicorn (built on first use).

Hot path (P1), each a hello world:

    asgi_bare, asgi_dingmw, asgi_sessions     Starlette; behind dingmw; behind Starlette's
                                              SessionMiddleware plus a login check
    wsgi_bare, wsgi_dingmw, wsgi_sessions     Flask; behind dingmw; Flask's signed-cookie
                                              session plus a login check
    asgi_floor, wsgi_floor                    the same apps behind the least any middleware
                                              doing dingmw's job does: it adds dingmw's
                                              keys (built once) and calls the app, reading
                                              nothing of the request

Logins and memory (P2, P3), configured by the `DINGMW_*` environment (pointed at the fake
DingTalk), with a memory store the benchmark can read and empty through two routes of
its own in front of dingmw:

    asgi_login, wsgi_login                    GET /_bench/stats (after a gc: RSS, store
                                              entries, the verified-session cache's
                                              entries and weight);
                                              POST /_bench/reset (empty the store)

    asgi_harness                              asgi_login, but its callback only waits out
                                              P2's floor (BENCH_FLOOR seconds), or only
                                              makes oauth2's two DingTalk calls (BENCH_CALLS:
                                              the fake's URL): the storm's cost outside
                                              dingmw's callback

The cookies a load generator sends come from `cookies(variant, n)`: n distinct people.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import re
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from flask import Flask, Response, session
from flask.sessions import SecureCookieSessionInterface
from starlette.applications import Starlette
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.responses import Response as StarletteResponse
from starlette.routing import Route

from dingmw import ASGIMiddleware, Identity, Settings, WSGIMiddleware
from dingmw.asgi import MIDDLEWARE_KEY
from dingmw.clients import async_clients
from dingmw.identity import IDENTITY_KEY
from dingmw.starlette_user import AUTHENTICATED, DingTalkUser
from dingmw.stores.memory import MemoryStore

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
else:
    StartResponse = WSGIApplication = WSGIEnvironment = Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

HOT_SETTINGS = Settings(
    app_key="bench-app",
    app_secret="bench-secret",
    secret_keys=("bench-signing-key-0123456789-abcdefghijklmnop",),
)
SESSION_SECRET = "bench-starlette-session-secret-0123456789abcdef"
FLASK_SECRET = "bench-flask-session-secret-0123456789abcdef"


def person(index: int) -> Identity:
    return Identity(
        unionid=f"benchunion{index:016d}iE",
        userid=f"user{index}",
        name=f"用户{index}",
        email=f"user{index}@corp.example.com",
        dept_ids=(1, 100),
        flow="oauth2",
    )


# Hot path: ASGI ---------------------------------------------------------------------


async def hello(request: Request) -> StarletteResponse:
    return PlainTextResponse("hello")


def starlette_hello() -> Starlette:
    return Starlette(routes=[Route("/", hello)])


class LoginRequired:
    """The usual hand-rolled check behind SessionMiddleware."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["session"].get("user"):
            await PlainTextResponse("login", status_code=401)(scope, receive, send)
            return
        await self.app(scope, receive, send)


class AsgiFloor:
    """Adds to every request's scope what dingmw adds for a logged-in person (the identity,
    Starlette's user and credentials, the middleware), built once, and awaits the app: no
    cookie read, no header screened. What is left of dingmw's cost below this is the job's."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        identity = person(0)
        self.keys = {
            IDENTITY_KEY: identity,
            MIDDLEWARE_KEY: self,
            "user": DingTalkUser(identity),
            "auth": AUTHENTICATED,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope.update(self.keys)
        await self.app(scope, receive, send)


def asgi_sessions_app() -> ASGIApp:
    return SessionMiddleware(LoginRequired(starlette_hello()), secret_key=SESSION_SECRET)


# Hot path: WSGI ---------------------------------------------------------------------


def flask_hello() -> Flask:
    app = Flask("bench", static_folder=None)

    @app.route("/")
    def index() -> str:
        return "hello"

    return app


def flask_sessions() -> Flask:
    app = flask_hello()
    app.secret_key = FLASK_SECRET

    @app.before_request
    def login_required() -> Response | None:
        if not session.get("user"):
            return Response("login", status=401)
        return None

    return app


def wsgi_floor_app() -> WSGIApplication:
    """The WSGI floor: what dingmw adds to the environ for a logged-in person, and the call."""
    app = flask_hello()
    inner = app.wsgi_app
    identity = person(0)
    remote_user = identity.remote_user

    def floor(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        environ[IDENTITY_KEY] = identity
        environ["REMOTE_USER"] = remote_user
        return inner(environ, start_response)

    app.wsgi_app = floor  # type: ignore[method-assign]
    return app


def wsgi_dingmw_app() -> WSGIApplication:
    app = flask_hello()
    app.wsgi_app = WSGIMiddleware(app.wsgi_app, HOT_SETTINGS)  # type: ignore[method-assign]
    return app


# Cookies ----------------------------------------------------------------------------


def dingmw_cookies(count: int, settings: Settings = HOT_SETTINGS) -> list[str]:
    sessions = ASGIMiddleware(starlette_hello(), settings).core.sessions
    return [sessions.issue(person(i), secure=False).split(";", 1)[0] for i in range(count)]


def starlette_cookies(count: int) -> list[str]:
    """Cookies made by SessionMiddleware itself, for n people."""

    async def remember(request: Request) -> StarletteResponse:
        request.session["user"] = person(int(request.query_params["i"])).to_dict()
        return PlainTextResponse("ok")

    setter = SessionMiddleware(Starlette(routes=[Route("/", remember)]), secret_key=SESSION_SECRET)

    async def make() -> list[str]:
        made: list[str] = []
        for index in range(count):
            headers: list[tuple[bytes, bytes]] = []

            async def capture(message: Message, into: list[tuple[bytes, bytes]] = headers) -> None:
                if message["type"] == "http.response.start":
                    into.extend(message["headers"])

            async def receive() -> Message:
                return {"type": "http.request", "body": b"", "more_body": False}

            scope = {
                "type": "http",
                "method": "GET",
                "path": "/",
                "root_path": "",
                "query_string": f"i={index}".encode(),
                "headers": [],
            }
            await setter(scope, receive, capture)
            cookie = next(v for k, v in headers if k == b"set-cookie")
            made.append(cookie.decode().split(";", 1)[0])
        return made

    return asyncio.run(make())


def flask_cookies(count: int) -> list[str]:
    app = flask_sessions()
    serializer = SecureCookieSessionInterface().get_signing_serializer(app)
    assert serializer is not None
    name = app.config["SESSION_COOKIE_NAME"]
    return [f"{name}={serializer.dumps({'user': person(i).to_dict()})}" for i in range(count)]


def cookies(variant: str, count: int) -> list[str]:
    """What a logged-in browser of `variant` sends; the bare apps get dingmw's cookie."""
    if variant.endswith("sessions"):
        return starlette_cookies(count) if variant.startswith("asgi") else flask_cookies(count)
    return dingmw_cookies(count)


def write_cookies(path: Path, values: Iterable[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{v}\n" for v in values), encoding="ascii")
    return path


# Logins and memory --------------------------------------------------------------------


class BenchStore(MemoryStore):
    """dingmw's memory store, counted and emptied by the benchmark's own routes."""

    def entries(self) -> int:
        with self._lock:
            return len(self._data)

    def empty(self) -> None:
        with self._lock:
            self._data.clear()


def own_rss() -> int:
    match = re.search(r"^VmRSS:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    return int(match.group(1)) * 1024 if match else 0


def verified_cache(sessions: object) -> tuple[int | None, int | None]:
    """The verified-session cache's entries and weight in bytes (None when not told)."""
    for name in ("_cache", "cache", "_verified"):
        cache = getattr(sessions, name, None)
        if cache is not None and hasattr(cache, "__len__"):
            weight = getattr(cache, "weight", None)  # a property, or a method
            weight = weight() if callable(weight) else weight
            return len(cache), weight if isinstance(weight, int) else None
    return None, None


def bench_answer(path: str, store: BenchStore, sessions: object) -> bytes:
    if path == "/_bench/reset":
        store.empty()
        return b'{"ok": true}'
    gc.collect()
    entries, weight = verified_cache(sessions)
    stats = {
        "pid": os.getpid(),
        "rss": own_rss(),
        "store_entries": store.entries(),
        "session_cache": entries,
        "session_cache_bytes": weight,
    }
    return json.dumps(stats).encode()


def asgi_login_app() -> ASGIApp:
    store = BenchStore()
    middleware = ASGIMiddleware(starlette_hello(), Settings.from_env(), store=store.aio())

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/_bench/"):
            await middleware(scope, receive, send)
            return
        body = bench_answer(path, store, middleware.core.sessions)
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def asgi_harness_app() -> ASGIApp:
    """P2's harness floor: `asgi_login` with a callback that answers as a login does (302, a
    session cookie) after only waiting out the floor (BENCH_FLOOR seconds), or, with
    BENCH_CALLS set to the fake's URL, after only making an oauth2 login's two DingTalk calls
    (one after the other, through dingmw's pooled clients; their answers unread)."""
    login = asgi_login_app()
    wait = float(os.environ.get("BENCH_FLOOR", "0"))
    fake = os.environ.get("BENCH_CALLS", "")
    clients = async_clients(timeout=30.0)
    headers = [
        (b"location", b"/"),
        (b"set-cookie", b"dingmw_session=harness; Path=/; HttpOnly"),
        (b"content-length", b"0"),
    ]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") != "/dingtalk/callback":
            await login(scope, receive, send)
            return
        if fake:
            token = {
                "clientId": "k",
                "clientSecret": "s",
                "code": "c",
                "grantType": "authorization_code",
            }
            await clients.send(
                httpx.Request("POST", f"{fake}/v1.0/oauth2/userAccessToken", json=token)
            )
            me = {"x-acs-dingtalk-access-token": "t"}
            await clients.send(httpx.Request("GET", f"{fake}/v1.0/contact/users/me", headers=me))
        else:
            await asyncio.sleep(wait)
        await send({"type": "http.response.start", "status": 302, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    return app


def wsgi_login_app() -> WSGIApplication:
    store = BenchStore()
    flask = flask_hello()
    middleware = WSGIMiddleware(flask.wsgi_app, Settings.from_env(), store=store)
    flask.wsgi_app = middleware  # type: ignore[method-assign]

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if not path.startswith("/_bench/"):
            return flask(environ, start_response)
        body = bench_answer(path, store, middleware.core.sessions)
        start_response("200 OK", [("content-type", "application/json")])
        return [body]

    return app


BUILDERS: dict[str, Callable[[], Any]] = {
    "asgi_bare": starlette_hello,
    "asgi_dingmw": lambda: ASGIMiddleware(starlette_hello(), HOT_SETTINGS),
    "asgi_sessions": asgi_sessions_app,
    "asgi_floor": lambda: AsgiFloor(starlette_hello()),
    "wsgi_floor": wsgi_floor_app,
    "wsgi_bare": flask_hello,
    "wsgi_dingmw": wsgi_dingmw_app,
    "wsgi_sessions": flask_sessions,
    "asgi_login": asgi_login_app,
    "asgi_harness": asgi_harness_app,
    "wsgi_login": wsgi_login_app,
}
_built: dict[str, Any] = {}


def __getattr__(name: str) -> Any:
    """`apps:asgi_dingmw` and friends, built when a server first asks for one."""
    if name not in BUILDERS:
        raise AttributeError(name)
    if name not in _built:
        _built[name] = BUILDERS[name]()
    return _built[name]
