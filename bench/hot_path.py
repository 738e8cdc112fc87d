"""The authenticated request is the hot path: how much does dingmw cost on it?

Runs a hello-world Starlette app (ASGI) and a hello-world Flask app (WSGI)
in-process, with no server and no network, so the middleware's own cost is
as visible as it can be, and reports each variant's throughput as a ratio of
the bare app's, measured in the same run:

* bare app;
* behind dingmw with a valid session cookie (the hot path);
* (ASGI) behind Starlette's SessionMiddleware plus a login check, the usual
  hand-rolled alternative.

Variants alternate within each round (the order rotating from round to round) and each
ratio is the median over rounds of (variant ÷ bare in the same round). Goal: dingmw ≥ 0.95
of the bare app. Run: `python bench/hot_path.py`. The served benchmark is `p1_hot_path.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from flask import Flask
from starlette.applications import Starlette
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from dingmw import ASGIMiddleware, Identity, Settings, WSGIMiddleware

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]

SETTINGS = Settings(
    app_key="bench-app",
    app_secret="bench-secret",
    secret_keys=("bench-signing-key-0123456789-abcdefghijklmnop",),
)
IDENTITY = Identity(
    unionid="benchunion0000000000000001iE",
    userid="zhangsan",
    name="张三",
    email="zhangsan@corp.example.com",
    dept_ids=(1, 100),
    flow="oauth2",
)


async def hello(request: Request) -> Response:
    return PlainTextResponse("hello")


def starlette_app() -> Starlette:
    return Starlette(routes=[Route("/", hello)])


def session_cookie() -> str:
    core = ASGIMiddleware(starlette_app(), SETTINGS).core
    set_cookie = core.sessions.issue(IDENTITY, secure=False)
    return set_cookie.split(";", 1)[0]


def starlette_sessions() -> tuple[ASGIApp, str]:
    """Starlette's SessionMiddleware + a login check: the usual alternative."""

    class LoginRequired:
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
            if scope["type"] == "http" and not scope["session"].get("user"):
                await PlainTextResponse("login", status_code=401)(scope, receive, send)
                return
            await self.app(scope, receive, send)

    inner = SessionMiddleware(LoginRequired(starlette_app()), secret_key="x" * 48)

    async def set_session(request: Request) -> Response:
        request.session["user"] = IDENTITY.to_dict()
        return PlainTextResponse("ok")

    setter = SessionMiddleware(Starlette(routes=[Route("/", set_session)]), secret_key="x" * 48)
    headers: list[tuple[bytes, bytes]] = []

    async def capture(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            headers.extend(message["headers"])

    asyncio.run(setter(asgi_scope(""), asgi_receive, capture))
    cookie = next(v for k, v in headers if k == b"set-cookie").decode().split(";", 1)[0]
    return inner, cookie


def asgi_scope(cookie: str) -> Scope:
    headers = [
        (b"host", b"bench.example"),
        (b"user-agent", b"bench/1.0"),
        (b"accept", b"text/html,application/xhtml+xml"),
        (b"accept-language", b"zh-CN,zh;q=0.9"),
    ]
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
    }


async def asgi_receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


def asgi_rate(app: ASGIApp, cookie: str, n: int) -> float:
    async def run() -> float:
        statuses: list[int] = []

        async def send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        start = time.perf_counter()
        for _ in range(n):
            await app(asgi_scope(cookie), asgi_receive, send)
        elapsed = time.perf_counter() - start
        if set(statuses) != {200}:
            raise SystemExit(f"bench: unexpected statuses {set(statuses)}")
        return n / elapsed

    return asyncio.run(run())


def flask_app() -> Flask:
    app = Flask("bench", static_folder=None)

    @app.route("/")
    def index() -> str:
        return "hello"

    return app


def wsgi_environ(cookie: str) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/",
        "QUERY_STRING": "",
        "SERVER_NAME": "bench.example",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "bench.example",
        "HTTP_USER_AGENT": "bench/1.0",
        "HTTP_ACCEPT": "text/html,application/xhtml+xml",
        "HTTP_ACCEPT_LANGUAGE": "zh-CN,zh;q=0.9",
        "wsgi.url_scheme": "http",
        "wsgi.input": None,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }
    if cookie:
        environ["HTTP_COOKIE"] = cookie
    return environ


def wsgi_rate(app: Any, cookie: str, n: int) -> float:
    statuses: list[str] = []

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        statuses.append(status)
        return None

    start = time.perf_counter()
    for _ in range(n):
        for _chunk in app(wsgi_environ(cookie), start_response):
            pass
    elapsed = time.perf_counter() - start
    if {s.split()[0] for s in statuses} != {"200"}:
        raise SystemExit(f"bench: unexpected statuses {set(statuses)}")
    return n / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-n", type=int, default=20000, help="requests per variant and round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    n, rounds = args.n, args.rounds
    cookie = session_cookie()
    sessions_app, sessions_cookie = starlette_sessions()
    # Every variant receives the same kind of request, cookie included.
    variants: dict[str, tuple[str, Callable[[], float]]] = {}
    bare_asgi, wrapped_asgi = starlette_app(), ASGIMiddleware(starlette_app(), SETTINGS)
    # Both WSGI variants enter through `Flask.__call__`, as a server calls them.
    bare_wsgi, wrapped_wsgi = flask_app(), WSGIMiddleware(flask_app(), SETTINGS)
    variants["ASGI bare Starlette hello world"] = ("asgi", lambda: asgi_rate(bare_asgi, cookie, n))
    variants["ASGI dingmw, logged in"] = ("asgi", lambda: asgi_rate(wrapped_asgi, cookie, n))
    variants["ASGI SessionMiddleware + login check"] = (
        "asgi",
        lambda: asgi_rate(sessions_app, sessions_cookie, n),
    )
    variants["WSGI bare Flask hello world"] = ("wsgi", lambda: wsgi_rate(bare_wsgi, cookie, n))
    variants["WSGI dingmw, logged in"] = ("wsgi", lambda: wsgi_rate(wrapped_wsgi, cookie, n))

    # Interleaved rounds: every variant once per round, the order rotating.
    rates: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for index in range(rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            rates[name].append(variants[name][1]())
    bare = {"asgi": "ASGI bare Starlette hello world", "wsgi": "WSGI bare Flask hello world"}
    width = max(len(name) for name in names)
    print(f"{'variant':<{width}}  {'req/s':>10}  {'× bare':>6}   (median of {rounds} rounds)")
    for name, (kind, _) in variants.items():
        base = rates[bare[kind]]
        ratio = statistics.median(r / b for r, b in zip(rates[name], base, strict=True))
        print(f"{name:<{width}}  {statistics.median(rates[name]):>10.0f}  {ratio:>6.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
