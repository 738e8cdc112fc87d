"""`login_as`: a valid session for a person, in one line of a user's own test.

    from dingmw.testing import ZHANGSAN, login_as

    login_as(client, ZHANGSAN)            # Flask, Starlette/FastAPI, httpx or Django test client
    cookie = login_as(settings, ZHANGSAN) # or just the cookie, for any client: str(cookie)

The cookie is issued by the middleware's own session machinery (`Sessions.issue`
of the core in front of the app, or of one built from the settings), so it is
exactly what a real login would set; no DingTalk call is made.
"""

from __future__ import annotations

import http.cookies
from typing import Any, NamedTuple

from ..config import Settings
from ..core.flow import Core
from ..identity import Identity
from .directory import DEFAULT_CORP_ID, FakeUser

__all__ = ["SessionCookie", "identity_of", "login_as"]


class SessionCookie(NamedTuple):
    """The session cookie `login_as` issued: `str(cookie)` is `name=value` for a `Cookie` header."""

    name: str
    value: str
    domain: str | None = None

    def __str__(self) -> str:
        return f"{self.name}={self.value}"


def identity_of(person: FakeUser | Identity, *, flow: str = "oauth2") -> Identity:
    """A fake person as an enriched login in the fake organisation gives them (or an `Identity`)."""
    if isinstance(person, Identity):
        return person
    userid = person.userid_by_corp.get(DEFAULT_CORP_ID)
    return Identity(
        unionid=person.unionid,
        nick=person.nick,
        name=person.name,
        userid=userid,
        email=person.org_email or person.email,
        mobile=person.mobile,
        avatar_url=person.avatar_url or None,
        corp_id=DEFAULT_CORP_ID if userid else None,
        title=person.title,
        job_number=person.job_number,
        dept_ids=person.dept_ids if userid else (),
        flow=flow,
    )


def login_as(target: Any, person: FakeUser | Identity) -> SessionCookie:
    """Log `person` in: set their session cookie on `target` when it is a test client.

    `target` is any of: `Settings`; an `ASGIMiddleware` or `WSGIMiddleware`; a Flask app
    or its test client; a Starlette/FastAPI app or `TestClient`; an `httpx.Client` on an
    `httpx.WSGITransport`; a Django test client (settings from `dingmw.django`). Returns
    the cookie in every case.
    """
    core = _core_of(target)
    identity = identity_of(person, flow=core.settings.flow)
    set_cookie = core.sessions.issue(identity, secure=False)
    name, _, value = set_cookie.split(";", 1)[0].partition("=")
    cookie = SessionCookie(name, value, core.settings.cookie_domain)
    _set_on(target, cookie)
    return cookie


def _core_of(target: Any) -> Core:
    from ..asgi import ASGIMiddleware
    from ..rendering import render
    from ..session_cache import VerifiedSessions
    from ..wsgi import WSGIMiddleware

    if isinstance(target, Settings):
        return Core(target, render=render, cache=VerifiedSessions())
    found = _middleware_in(target, (ASGIMiddleware, WSGIMiddleware))
    if found is not None:
        core: Core = found.core
        return core
    if isinstance(getattr(target, "cookies", None), http.cookies.SimpleCookie):
        from ..django.conf import dingmw_settings  # a Django test client

        return Core(dingmw_settings(), render=render, cache=VerifiedSessions())
    raise TypeError(
        f"login_as() cannot find dingmw in front of {type(target).__name__}: pass the "
        "Settings, the middleware, or a test client of an app that dingmw wraps"
    )


def _middleware_in(target: Any, kinds: tuple[type, ...]) -> Any:
    """Walk from a client or app to the dingmw middleware in front of (or inside) it."""
    todo: list[Any] = [target]
    seen: set[int] = set()
    while todo:
        layer = todo.pop(0)
        if layer is None or id(layer) in seen or len(seen) > 64:
            continue
        seen.add(id(layer))
        if isinstance(layer, kinds):
            return layer
        extensions = getattr(layer, "extensions", None)  # a Flask app
        if isinstance(extensions, dict) and isinstance(extensions.get("dingmw"), kinds):
            return extensions["dingmw"]
        # A Starlette/FastAPI app wrapped from outside: the middleware left itself in `state`.
        in_state = getattr(getattr(layer, "state", None), "dingmw", None)
        if isinstance(in_state, kinds):
            return in_state
        if getattr(layer, "user_middleware", None) and layer.middleware_stack is None:
            layer.middleware_stack = layer.build_middleware_stack()  # as its first call would
        todo += [
            getattr(layer, name, None)
            for name in ("application", "app", "middleware_stack", "wsgi_app", "_transport")
        ]
        # A Starlette router's mounts (`Mount("/app", ASGIMiddleware(inner))`).
        routes = getattr(layer, "routes", None)
        if isinstance(routes, list):
            todo += [getattr(route, "app", None) for route in routes]
    return None


def _set_on(target: Any, cookie: SessionCookie) -> None:
    cookies = getattr(target, "cookies", None)
    if isinstance(cookies, http.cookies.SimpleCookie):  # Django's test client
        cookies[cookie.name] = cookie.value
        return
    if callable(getattr(target, "set_cookie", None)) and hasattr(target, "application"):
        kwargs = {"domain": cookie.domain} if cookie.domain else {}
        target.set_cookie(cookie.name, cookie.value, **kwargs)  # Flask's test client
        return
    if cookies is not None and callable(getattr(cookies, "set", None)):  # httpx, TestClient
        cookies.set(cookie.name, cookie.value, domain=cookie.domain or "")
