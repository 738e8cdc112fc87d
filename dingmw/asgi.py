"""`ASGIMiddleware`: the core under any ASGI app (Starlette, FastAPI, Django ASGI, ...).

A thin translator: scope → `WebRequest`, the core's decision → the wrapped
app (with the identity in the scope, and without any client-sent identity
header: `dingmw.spoofing`) or a response. The lifespan passes
through to the app (its shutdown also closes dingmw's pooled HTTP client); a
websocket to a protected path without a session is refused before it is
accepted.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, TypeVar

import httpx

from .clients import AsyncClients, async_clients
from .config import Settings
from .core.drive import AsyncRunner
from .core.effects import Flow
from .core.flow import Core
from .core.http import INTERNAL_ERROR, WebRequest, WebResponse
from .core.outcome import Exchange, Forward, Respond
from .errors import ConfigError
from .identity import IDENTITY_KEY
from .rendering import renderer
from .session_cache import VerifiedSessions
from .spoofing import IdentityHeaders
from .starlette_user import ANONYMOUS_AUTH, ANONYMOUS_USER, AUTHENTICATED, DingTalkUser
from .stores import AsyncStore, open_stores

T = TypeVar("T")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# The middleware that forwarded a request, in its scope: what a framework integration (a
# FastAPI dependency in a mounted sub-app, say) asks to answer as the middleware would.
MIDDLEWARE_KEY = "dingmw.middleware"
log = logging.getLogger("dingmw")

_SCHEMES = {"http": "http", "https": "https", "ws": "http", "wss": "https"}


def cookie_header(scope: Scope) -> str:
    cookie = ""
    for name, value in scope["headers"]:
        if name == b"cookie":
            text = value.decode("latin-1")
            cookie = f"{cookie}; {text}" if cookie else text
    return cookie


def route_path(scope: Scope) -> str:
    """The path below the app's mount point (`root_path`)."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path):
        return path[len(root_path) :] or "/"
    return path


def request_from_scope(scope: Scope) -> WebRequest:
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        if name in headers:
            value = headers[name] + ("; " if name == "cookie" else ", ") + value
        headers[name] = value
    host = headers.get("host")
    if not host:
        server = scope.get("server")
        host = f"{server[0]}:{server[1]}" if server else "localhost"
    return WebRequest(
        method=scope.get("method", "GET"),
        scheme=_SCHEMES.get(scope.get("scheme", "http"), "http"),
        host=host,
        root_path=scope.get("root_path", ""),
        path=route_path(scope),
        query_string=scope.get("query_string", b"").decode("latin-1"),
        headers=headers,
    )


async def send_response(response: WebResponse, send: Send, *, head: bool = False) -> None:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers]
    headers.append((b"content-length", str(len(response.body)).encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else response.body})


class ASGIMiddleware:
    """Put DingTalk login in front of an ASGI app.

    `settings=None` reads `DINGMW_*` from the environment. For tests and
    custom networking pass `transport=` (an `httpx.AsyncBaseTransport`, such
    as `dingmw.testing.FakeDingTalk().transport()`) or a ready `client=`.

    A wrapped app's own `root_path` (`FastAPI(root_path="/app")`) is honoured
    when the server gives none, and a Starlette/FastAPI app finds this
    middleware as `app.state.dingmw` (for `dingmw.fastapi`). Built by
    Starlette's `add_middleware` (inside the server's lifespan, where uvicorn
    would hide the exception), a configuration error fails the start-up
    with its message instead.
    """

    def __new__(cls, app: ASGIApp, settings: Settings | None = None, **kwargs: Any) -> Any:
        if settings is None and _built_by_starlette():
            try:
                Settings.from_env()
            except ConfigError as exc:
                return Misconfigured(exc)
        return super().__new__(cls)

    def __init__(
        self,
        app: ASGIApp,
        settings: Settings | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        client: httpx.AsyncClient | None = None,
        store: AsyncStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app = app
        self.settings = settings if settings is not None else Settings.from_env()
        render = renderer(self.settings.templates_dir)
        self.core = Core(self.settings, render=render, clock=clock, cache=VerifiedSessions())
        self._hit = self.core.hit
        self.effects = AsyncEffects(self.settings, transport=transport, client=client, store=store)
        self.identity_headers = IdentityHeaders(self.settings.strip_headers)
        self.trust_proxy = self.settings.trust_proxy
        root_path = getattr(app, "root_path", "")
        self.root_path: str = root_path if isinstance(root_path, str) else ""
        state = getattr(app, "state", None)
        if state is not None:
            with contextlib.suppress(AttributeError, TypeError):
                state.dingmw = self

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            if kind == "lifespan":
                send = self.effects.closing_on_shutdown(send)
            await self.app(scope, receive, send)
            return
        if self.root_path and not scope.get("root_path"):
            scope["root_path"] = self.root_path
        cookie, spoofed = self.identity_headers.scan(scope["headers"])
        path = route_path(scope) if scope.get("root_path") else scope["path"]
        if self.trust_proxy and self._bad_prefix(scope["headers"]):  # the core answers 400
            decided = self.core.decide(request_from_scope(scope))
            await self._decided(scope, receive, send, decided, cookie, path, spoofed)
            return
        # The hot path, straight through: a verified session in the cache, nothing to strip.
        try:
            forward = self._hit(path, cookie)
        except Exception:  # `_decided` asks again, and answers the error
            forward = None
        if forward is not None and not spoofed:
            scope.update(forward.extra or self._scope_keys(forward))
            await self.app(scope, receive, send)
            return
        await self._decided(scope, receive, send, forward, cookie, path, spoofed)

    def _scope_keys(self, forward: Forward) -> dict[str, Any]:
        """What this middleware adds to the scope of a request it forwards: the identity,
        Starlette's user and credentials, and the middleware itself.

        For a person, built once and kept in `forward.extra`: a cached session's forward
        is the same object on every request (`core.session.Entry`), so the hot path adds
        them with one `scope.update`. An anonymous forward is shared by every middleware
        in the process, so its keys are built each time."""
        identity = forward.identity
        if identity is None:
            return {
                IDENTITY_KEY: None,
                MIDDLEWARE_KEY: self,
                "user": ANONYMOUS_USER,
                "auth": ANONYMOUS_AUTH,
            }
        extra = forward.extra
        if not extra:
            extra[IDENTITY_KEY] = identity
            extra[MIDDLEWARE_KEY] = self
            extra["user"] = DingTalkUser(identity)
            extra["auth"] = AUTHENTICATED
        return extra

    def _bad_prefix(self, headers: list[tuple[bytes, bytes]]) -> bool:
        """A trusted `X-Forwarded-Prefix` the core refuses (asked before the fast paths)."""
        for name, value in headers:
            if name == b"x-forwarded-prefix":
                return self.core.prefix_refused(value.decode("latin-1"))
        return False

    async def _decided(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        decision: Forward | Exchange | Respond | None,
        cookie: str,
        path: str,
        spoofed: bool,
    ) -> None:
        """Every request but a cached session's: the core decides, flows run, the app or a
        response answers."""
        try:
            decision = (
                decision
                or self.core.missed(path, cookie, lambda: request_from_scope(scope))
                or self.core.decide(request_from_scope(scope))
            )
        except Exception:
            log.exception("dingmw: internal error while deciding a request")
            decision = Respond(INTERNAL_ERROR)
        if isinstance(decision, Exchange):
            outcome = await self.exchange(decision.flow)
            decision = outcome if isinstance(outcome, Forward) else Respond(outcome)
        if isinstance(decision, Forward):
            if spoofed:
                self.identity_headers.strip_scope(scope)
            scope.update(self._scope_keys(decision))
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await send_response(decision.response, send, head=scope.get("method") == "HEAD")

    @property
    def store(self) -> AsyncStore:
        return self.effects.store

    @property
    def routes(self) -> list[Any]:
        """The wrapped app's routes: a Starlette `Mount("/app", ASGIMiddleware(inner))` finds
        the names inside for `url_for` (and `@requires(redirect=...)`) through them."""
        routes = getattr(self.app, "routes", None)
        return routes if isinstance(routes, list) else []

    async def exchange(self, flow: Flow[WebResponse | Forward]) -> WebResponse | Forward:
        return await self.effects.run(flow)


def _built_by_starlette() -> bool:
    """Whether Starlette's middleware stack (`add_middleware`) is building this middleware."""
    frame = sys._getframe(2)  # __new__ <- Starlette's build_middleware_stack
    module = str(frame.f_globals.get("__name__", ""))
    return frame.f_code.co_name == "build_middleware_stack" and module.startswith(
        ("starlette.", "fastapi.")
    )


class Misconfigured:
    """Stands in for an `ASGIMiddleware` whose settings are wrong, built by `add_middleware`.

    The lifespan start-up fails with the configuration error (uvicorn prints it and
    exits); a request meanwhile gets a plain 500 and the error is logged.
    """

    def __init__(self, error: ConfigError) -> None:
        self.error = error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"dingmw: configuration error: {self.error}"
        if scope["type"] == "lifespan":
            event = await receive()
            if event["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.failed", "message": message})
            else:
                await send({"type": "lifespan.shutdown.complete"})
            return
        log.error("%s", message)
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1011})
            return
        await send_response(INTERNAL_ERROR, send)


class AsyncEffects:
    """Runs flows under asyncio: the pooled `httpx.AsyncClient` and the async store."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        client: httpx.AsyncClient | None = None,
        store: AsyncStore | None = None,
    ) -> None:
        self.settings = settings
        self.store = store if store is not None else open_stores(settings.store_url)[1]
        self.clients: AsyncClients = async_clients(
            timeout=settings.http_timeout, transport=transport, client=client
        )

    async def run(self, flow: Flow[T]) -> T | WebResponse:
        """Run `flow`; a bug in dingmw becomes a logged plain 500, never a traceback page."""
        try:
            return await AsyncRunner(self.clients, self.store).run(flow)
        except Exception:
            log.exception("dingmw: internal error while running a flow")
            return INTERNAL_ERROR

    def closing_on_shutdown(self, send: Send) -> Send:
        """`send` for a lifespan scope: close the pooled client once the app has shut down."""

        async def lifespan_send(message: Message) -> None:
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                await self.clients.aclose()
            await send(message)

        return lifespan_send
