"""FastAPI dependencies: `current_identity`, `require_identity` and `require(...)`.

    from fastapi import Depends, FastAPI
    from dingmw import Identity
    from dingmw.fastapi import DingTalk, current_identity, require, require_identity

    app = FastAPI()
    DingTalk(app)                                  # add_middleware, settings read now

    @app.get("/me")
    async def me(who: Annotated[Identity, Depends(require_identity)]) -> dict[str, str]: ...

    @app.get("/hello")
    async def hello(who: RequiredIdentity) -> str: ...   # the same, as a type alias

    @app.get("/admin", dependencies=[Depends(require(depts=[100]))])
    async def admin() -> str: ...

Every path is protected by the middleware unless it is in `DINGMW_PUBLIC_PATHS`;
`require_identity` matters on public paths, where it answers as the middleware
would (a browser is sent to the login page, an API client gets 401 JSON), and
`require(...)` answers the middleware's 403 page or JSON. The answers are
raised as `DingTalkRefusal` (an `HTTPException`); `DingTalk(app)` registers
the handler that sends them exactly as the middleware does (without it,
FastAPI's own handler sends the same status and headers with a `{"detail": ...}`
body).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, WebSocketException
from fastapi.exceptions import HTTPException
from starlette.applications import Starlette
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.routing import Mount

from .access import Access
from .asgi import MIDDLEWARE_KEY, ASGIMiddleware, request_from_scope
from .config import Settings
from .core.http import WebResponse
from .identity import Identity, get_identity

__all__ = [
    "CurrentIdentity",
    "DingTalk",
    "DingTalkRefusal",
    "RequiredIdentity",
    "current_identity",
    "require",
    "require_identity",
]


class DingTalkRefusal(HTTPException):
    """The middleware's answer to a request a dependency refused (302, 401 or 403)."""

    def __init__(self, response: WebResponse) -> None:
        detail: Any = None
        if response.body and dict(response.headers).get("content-type") == "application/json":
            detail = json.loads(response.body)
        headers = {k: v for k, v in response.headers if k not in ("content-type", "set-cookie")}
        super().__init__(status_code=response.status, detail=detail, headers=headers)
        self.response = response


async def send_refusal(request: Request, exc: Exception) -> Response:
    """The exception handler `DingTalk(app)` registers: the middleware's own response."""
    assert isinstance(exc, DingTalkRefusal)  # noqa: S101  # registered for this class only
    answer = exc.response
    body = b"" if request.method == "HEAD" else answer.body
    out = Response(content=body, status_code=answer.status)
    for name, value in answer.headers:
        out.headers.append(name, value)
    return out


def DingTalk(  # named like the Flask extension it mirrors
    app: FastAPI, settings: Settings | None = None, **options: Any
) -> None:
    """Put dingmw in front of `app` (`add_middleware`) and register `DingTalkRefusal`'s handler
    (on the sub-apps mounted in it so far too: mount them first).

    `settings=None` reads `DINGMW_*` now, so a configuration error stops the
    import of the app with a `ConfigError` naming the variable. Other keyword
    arguments (`transport=`, `store=`, `clock=`) go to `ASGIMiddleware`.
    """
    app.add_middleware(ASGIMiddleware, settings=settings or Settings.from_env(), **options)
    for each in _with_sub_apps(app):
        each.add_exception_handler(DingTalkRefusal, send_refusal)


def _with_sub_apps(app: Starlette, depth: int = 0) -> Iterator[Starlette]:
    """`app` and the Starlette/FastAPI apps mounted in it (a sub-app handles the exceptions
    its own routes raise), as far as they are mounted when `DingTalk(app)` runs."""
    yield app
    if depth < 8:
        for route in app.routes:
            inner = getattr(route, "app", None)
            if isinstance(route, Mount) and isinstance(inner, Starlette):
                yield from _with_sub_apps(inner, depth + 1)


def middleware_of(request: HTTPConnection) -> ASGIMiddleware:
    """The `ASGIMiddleware` in front of this request's app (the one that forwarded it: in
    a mounted sub-app too)."""
    forwarded = request.scope.get(MIDDLEWARE_KEY)
    if isinstance(forwarded, ASGIMiddleware):
        return forwarded
    app = request.scope.get("app")
    found = getattr(getattr(app, "state", None), "dingmw", None)
    if isinstance(found, ASGIMiddleware):
        return found
    layer: object = getattr(app, "middleware_stack", None)
    for _ in range(32):  # add_middleware: the stack's layers keep the next one as `.app`
        if isinstance(layer, ASGIMiddleware):
            return layer
        layer = getattr(layer, "app", None)
        if layer is None:
            break
    raise RuntimeError(
        "dingmw.fastapi: no dingmw middleware in front of this app; use DingTalk(app), "
        "app.add_middleware(ASGIMiddleware, ...) or ASGIMiddleware(app)"
    )


async def current_identity(request: HTTPConnection) -> Identity | None:
    """`Depends(current_identity)`: the person, or None (a public path without a session).
    On HTTP and websocket routes alike."""
    return get_identity(request)


async def require_identity(request: HTTPConnection) -> Identity:
    """`Depends(require_identity)`: the person; anyone else is answered as the middleware would
    (a websocket is closed with 1008, policy violation, as the middleware closes its own)."""
    identity = get_identity(request)
    if identity is None:
        if request.scope["type"] == "websocket":
            raise WebSocketException(code=1008, reason="login_required")
        core = middleware_of(request).core
        raise DingTalkRefusal(core.login_required(request_from_scope(request.scope)))
    return identity


def require(
    *, users: Iterable[str] = (), depts: Iterable[int] = (), corps: Iterable[str] = ()
) -> Callable[[HTTPConnection], Awaitable[Identity]]:
    """A dependency: `require_identity`, and only for these people (userids or unionids),
    departments or organisations (each list given must match); others get the 403 answer."""
    access = Access.of(users=users, depts=depts, corps=corps)

    async def required(request: HTTPConnection) -> Identity:
        identity = await require_identity(request)
        refusal = access.refusal(identity)
        if refusal is not None:
            if request.scope["type"] == "websocket":
                raise WebSocketException(code=1008, reason=refusal.reason)
            core = middleware_of(request).core
            raise DingTalkRefusal(core.error(request_from_scope(request.scope), refusal))
        return identity

    return required


CurrentIdentity = Annotated[Identity | None, Depends(current_identity)]
"""A parameter type: the person or None (`me: CurrentIdentity`)."""
RequiredIdentity = Annotated[Identity, Depends(require_identity)]
"""A parameter type: the person, else the middleware's 302/401 (`me: RequiredIdentity`)."""
