"""Flask helpers: the `DingTalk(app)` extension, `current_identity()`, `@login_required`
and `@require(...)`.

    from dingmw.flask import DingTalk, current_identity, login_required, require

    dingtalk = DingTalk()              # or DingTalk(app)

    def create_app() -> Flask:
        app = Flask(__name__)
        dingtalk.init_app(app)         # wraps app.wsgi_app in WSGIMiddleware
        return app

    @bp.route("/admin")
    @require(depts=[100])
    def admin(): ...

Every path is protected by the middleware unless it is in `DINGMW_PUBLIC_PATHS`;
the decorators matter on public paths (answering as the middleware would: a
browser is sent to the login page, an API client gets 401 JSON) and for
`require(...)`, which answers the middleware's 403 page or JSON.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ParamSpec, TypeVar

from flask import Flask, Response, current_app, request

from .access import Access
from .config import Settings, env_text
from .identity import Identity, get_identity
from .wsgi import WSGIMiddleware, request_from_environ

__all__ = ["DingTalk", "current_identity", "login_required", "require"]

P = ParamSpec("P")
R = TypeVar("R")

EXTENSION = "dingmw"


class DingTalk:
    """Flask extension: wraps `app.wsgi_app` in `WSGIMiddleware`.

    Settings come from `settings=`, else from `DINGMW_*` keys of `app.config`
    over the environment, read when the extension is bound to the app (a
    `ConfigError` then names the missing or wrong variable). Other keyword
    arguments (`transport=`, `store=`, `clock=`) go to the middleware.
    """

    def __init__(
        self, app: Flask | None = None, *, settings: Settings | None = None, **options: Any
    ) -> None:
        self.settings = settings
        self.options = options
        self.middleware: WSGIMiddleware | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        settings = self.settings or Settings.from_env(_env_with(app.config))
        self.middleware = WSGIMiddleware(app.wsgi_app, settings, **self.options)
        app.wsgi_app = self.middleware  # type: ignore[method-assign]  # Flask's documented way
        app.extensions[EXTENSION] = self.middleware


def _env_with(config: Mapping[str, Any]) -> dict[str, str]:
    env = dict(os.environ)
    env.update({k: env_text(v) for k, v in config.items() if k.startswith("DINGMW_")})
    return env


def middleware_of(app: Flask) -> WSGIMiddleware:
    """The `WSGIMiddleware` in front of `app` (`DingTalk(app)`, or wrapped by hand)."""
    found = app.extensions.get(EXTENSION)
    if isinstance(found, WSGIMiddleware):
        return found
    layer: object = app.wsgi_app
    for _ in range(16):  # through ProxyFix and the like, which keep the next layer as `.app`
        if isinstance(layer, WSGIMiddleware):
            return layer
        layer = getattr(layer, "app", None)
        if layer is None:
            break
    raise RuntimeError(
        "dingmw.flask: no dingmw middleware in front of this app; use DingTalk(app) "
        "or app.wsgi_app = WSGIMiddleware(app.wsgi_app)"
    )


def current_identity() -> Identity | None:
    """The person of the current request, or None (on a public path without a session)."""
    return get_identity(request)


def _answer(build: Callable[[WSGIMiddleware], Any]) -> Response:
    response = build(middleware_of(current_app))
    return Response(response.body, status=response.status, headers=list(response.headers))


def login_required(view: Callable[P, R]) -> Callable[P, R | Response]:
    """The view runs for a logged-in person; anyone else is answered as the middleware would."""

    @functools.wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | Response:
        if current_identity() is None:
            return _answer(lambda m: m.core.login_required(request_from_environ(request.environ)))
        return view(*args, **kwargs)

    return wrapper


def require(
    *, users: Iterable[str] = (), depts: Iterable[int] = (), corps: Iterable[str] = ()
) -> Callable[[Callable[P, R]], Callable[P, R | Response]]:
    """`@login_required`, and only for these people (userids or unionids), departments
    or organisations (each list given must match); anyone else gets the 403 page."""
    access = Access.of(users=users, depts=depts, corps=corps)

    def decorate(view: Callable[P, R]) -> Callable[P, R | Response]:
        @functools.wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | Response:
            identity = current_identity()
            req = request_from_environ(request.environ)
            if identity is None:
                return _answer(lambda m: m.core.login_required(req))
            refusal = access.refusal(identity)
            if refusal is not None:
                return _answer(lambda m: m.core.error(req, refusal))
            return view(*args, **kwargs)

        return wrapper

    return decorate
