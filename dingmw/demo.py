"""`dingmw demo`: an example app behind the middleware, plus the fake DingTalk.

Everything runs on this machine with no DingTalk account: the fake serves
DingTalk's pages and APIs on a second port, and the example app's settings
point at it. A person opens the printed URL, picks a user in the fake QR
frame ("scans"), and lands on a page showing who they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import secrets
import socket
import threading

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse
from starlette.routing import Route

from .asgi import ASGIMiddleware
from .config import Settings
from .identity import get_identity
from .serving import bind as bind  # re-exported: examples bind their sockets with it
from .serving import browser_host

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>dingmw demo</title>
<style>body{{font-family:sans-serif;max-width:640px;margin:8vh auto;padding:0 12px;line-height:1.6}}
table{{border-collapse:collapse;width:100%;table-layout:fixed}}
td{{padding:2px 12px 2px 0;vertical-align:top;overflow-wrap:anywhere}}
td:first-child{{width:7em}}</style></head>
<body><h1 id="greeting">Hello, {name}</h1>
<p>You logged in with DingTalk ({flow} flow). This is what the wrapped app sees:</p>
<table id="identity">{rows}</table>
<p><a href="/dingtalk/me">/dingtalk/me</a> (JSON) ·
<a id="logout" href="/dingtalk/logout">Log out</a></p>
</body></html>"""


async def home(request: Request) -> HTMLResponse:
    identity = get_identity(request)
    if identity is None:  # the middleware lets only logged-in people through
        return HTMLResponse("not logged in", status_code=401)
    rows = "".join(
        f"<tr><td>{html.escape(key)}</td><td>{html.escape(str(value))}</td></tr>"
        for key, value in identity.to_dict().items()
        if value not in (None, [], "")
    )
    return HTMLResponse(
        PAGE.format(
            name=html.escape(request.user.display_name), flow=html.escape(identity.flow), rows=rows
        )
    )


async def health(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def example_app() -> Starlette:
    """The app the demo wraps: `/` needs a login, `/health` is public."""
    return Starlette(routes=[Route("/", home), Route("/health", health)])


def fake_settings(fake_url: str, *, flow: str = "oauth2") -> Settings:
    """Settings that point every DingTalk URL at a fake DingTalk served at `fake_url`."""
    from .providers.registry import login_flow
    from .testing import DEFAULT_APP_KEY, DEFAULT_APP_SECRET

    script = login_flow(flow).demo_script
    if script is None:
        raise ValueError(f"the {flow} flow has no demo")
    return Settings(
        flow=flow,  # type: ignore[arg-type]  # validated by Settings.__post_init__
        app_key=DEFAULT_APP_KEY,
        app_secret=DEFAULT_APP_SECRET,
        secret_keys=(secrets.token_urlsafe(48),),
        public_paths=("/health",),
        oapi_url=fake_url,
        api_url=fake_url,
        login_url=fake_url,
        login_script_url=f"{fake_url}{script}",
        cookie_secure="false",
    )


async def serve(host: str, port: int, *, flow: str = "oauth2", fake_port: int = 0) -> None:
    """Serve the example app on `host:port` and the fake DingTalk on another port."""
    await serve_on(host, bind(host, port), bind(host, fake_port), flow=flow)


async def serve_on(
    host: str, app_sock: socket.socket, fake_sock: socket.socket, *, flow: str = "oauth2"
) -> None:
    """`serve` on sockets already listening (so a busy port is known before any loop runs)."""
    from .testing import FakeDingTalk

    shown = browser_host(host)
    fake_url = f"http://{shown}:{fake_sock.getsockname()[1]}"
    app_url = f"http://{shown}:{app_sock.getsockname()[1]}/"
    settings = fake_settings(fake_url, flow=flow)
    app = ASGIMiddleware(example_app(), settings)
    servers = [
        uvicorn.Server(
            uvicorn.Config(FakeDingTalk().asgi_app, log_level="warning", lifespan="off")
        ),
        uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off")),
    ]
    print(f"dingmw demo ({flow} flow) with a fake DingTalk at {fake_url}", flush=True)
    print(f"Open {app_url} in your browser. Press Ctrl-C to stop.", flush=True)
    await asyncio.gather(
        servers[0].serve(sockets=[fake_sock]), servers[1].serve(sockets=[app_sock])
    )


def run(host: str, port: int, *, flow: str = "oauth2") -> None:
    """Bind both ports (`CannotListen` when one is taken), then serve until Ctrl-C."""
    app_sock = bind(host, port)
    fake_sock = bind(host, 0)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_on(host, app_sock, fake_sock, flow=flow))


class ReadyServer(uvicorn.Server):
    """A uvicorn server that says when it has started, or failed to: `ready` is set after
    start-up either way, and `started` tells which."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets=sockets)
        finally:
            self.ready.set()

    def run_in_thread(self, sockets: list[socket.socket]) -> None:
        try:
            self.run(sockets=sockets)
        finally:
            self.ready.set()  # a failure before startup() must not leave anyone waiting


def start_fake(host: str = "127.0.0.1") -> str:
    """Serve a fake DingTalk on a free port in a background thread; returns its URL.

    For examples and local experiments; the thread ends with the process.
    """
    from .testing import FakeDingTalk

    sock = bind(host, 0)
    server = ReadyServer(
        uvicorn.Config(FakeDingTalk().asgi_app, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(
        target=server.run_in_thread, args=([sock],), name="fake-dingtalk", daemon=True
    )
    thread.start()
    if not server.ready.wait(15) or not server.started:
        raise RuntimeError("the fake DingTalk did not start")
    return f"http://{browser_host(host)}:{sock.getsockname()[1]}"
