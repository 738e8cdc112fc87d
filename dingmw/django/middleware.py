"""`DingTalkMiddleware`: dingmw as a Django middleware, and the Django login it makes.

A thin adapter, like `dingmw.wsgi` and `dingmw.asgi`: the Django request becomes a
`WebRequest`, the core decides (`/dingtalk/*` answered here; a protected page without a
session sent to log in; otherwise the view runs with `get_identity(request)` set), then
the DingTalk person is logged in to Django through `DingTalkBackend`. Sync and async
(WSGI and ASGI) alike. Put it after `SessionMiddleware` and `AuthenticationMiddleware`.
"""

from __future__ import annotations

import functools
import http.cookies
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.contrib import auth
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, HttpResponseBase

from ..asgi import AsyncEffects
from ..clients import sync_clients
from ..core.drive import SyncRunner
from ..core.flow import Core
from ..core.http import INTERNAL_ERROR, WebRequest, WebResponse
from ..core.outcome import Decision, Exchange, Forward, Respond
from ..core.routes import own_route
from ..identity import IDENTITY_KEY, Identity
from ..rendering import renderer
from ..session_cache import VerifiedSessions
from ..spoofing import IdentityHeaders
from ..stores import open_stores
from .conf import dingmw_settings

log = logging.getLogger("dingmw")

BACKEND = "dingmw.django.backends.DingTalkBackend"
# Set in the Django session by a login this middleware made: only those end with dingmw's.
SESSION_KEY = "_dingmw_unionid"

GetResponse = Callable[[HttpRequest], Any]


class DingTalkMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse) -> None:
        refuse_remote_user_before(type(self))
        self.get_response = get_response
        self.settings = dingmw_settings()
        render = renderer(self.settings.templates_dir)
        self.core = Core(self.settings, render=render, cache=VerifiedSessions())
        self.identity_headers = IdentityHeaders(self.settings.strip_headers)
        self.trust_proxy = self.settings.trust_proxy
        self.is_async = iscoroutinefunction(get_response)
        stores = open_stores(self.settings.store_url)
        if self.is_async:
            markcoroutinefunction(self)
            self.effects = AsyncEffects(self.settings, store=stores[1])
        else:
            self.store = stores[0]
            self.clients = sync_clients(timeout=self.settings.http_timeout)

    # Sync (WSGI) ------------------------------------------------------------------------

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        decision = self.decide(request)
        if isinstance(decision, Exchange):
            try:
                outcome = SyncRunner(self.clients, self.store).run(decision.flow)
            except Exception:
                log.exception("dingmw: internal error during a login exchange")
                outcome = INTERNAL_ERROR
            decision = outcome if isinstance(outcome, Forward) else Respond(outcome)
        if isinstance(decision, Respond) and self.django_login_passes(request):
            decision = Forward(None)
        if isinstance(decision, Forward):
            self.forward(request, decision.identity)
            self.log_in(request, decision.identity)
            return self.get_response(request)
        self.after_own_route(request, decision.response)
        return to_django(decision.response, head=request.method == "HEAD")

    # Async (ASGI) -----------------------------------------------------------------------

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        decision = self.decide(request)
        if isinstance(decision, Exchange):
            outcome = await self.effects.run(decision.flow)
            decision = outcome if isinstance(outcome, Forward) else Respond(outcome)
        if isinstance(decision, Respond) and await sync_to_async(self.django_login_passes)(request):
            decision = Forward(None)
        if isinstance(decision, Forward):
            self.forward(request, decision.identity)
            await sync_to_async(self.log_in)(request, decision.identity)
            response: Awaitable[HttpResponseBase] = self.get_response(request)
            return await response
        await sync_to_async(self.after_own_route)(request, decision.response)
        return to_django(decision.response, head=request.method == "HEAD")

    # Shared -----------------------------------------------------------------------------

    def decide(self, request: HttpRequest) -> Decision:
        try:
            path = request.path_info
            cookie = request.META.get("HTTP_COOKIE", "")
            prefix = request.META.get("HTTP_X_FORWARDED_PREFIX") if self.trust_proxy else None
            if prefix is not None and self.core.prefix_refused(prefix):
                return self.core.decide(web_request(request))  # a 400
            return (
                self.core.hit(path, cookie)
                or self.core.missed(path, cookie, lambda: web_request(request))
                or self.core.decide(web_request(request))
            )
        except Exception:
            log.exception("dingmw: internal error while deciding a request")
            return Respond(INTERNAL_ERROR)

    def django_login_passes(self, request: HttpRequest) -> bool:
        """A page refused for want of a DingTalk session, to someone logged in to Django
        otherwise (`force_login` in tests, the admin's password form), or the admin's
        login page: the view runs.

        A Django login this middleware made ends here instead: its DingTalk session has.
        """
        if own_route(request.path_info, self.core.prefix) is not None:
            return False
        if request.path_info == admin_login_path():
            return True  # the admin's login page offers DingTalk (and a password form)
        if not hasattr(request, "session") or not hasattr(request, "user"):
            return False
        if SESSION_KEY in request.session:
            auth.logout(request)
            return False
        return bool(request.user.is_authenticated)

    def forward(self, request: HttpRequest, identity: Identity | None) -> None:
        scope = getattr(request, "scope", None)  # ASGI: get_identity(request) reads the scope
        if self.identity_headers.environ_spoofed(request.META):
            self.identity_headers.strip_environ(request.META)  # X-DingTalk-* from the client
            # `request.headers` is built from META once and kept: built before (by dingmw's
            # own reading, or an earlier middleware), it still holds them.
            request.__dict__.pop("headers", None)
            if isinstance(scope, dict):
                self.identity_headers.strip_scope(scope)
        request.META[IDENTITY_KEY] = identity
        if isinstance(scope, dict):
            scope[IDENTITY_KEY] = identity

    def log_in(self, request: HttpRequest, identity: Identity | None) -> None:
        """Make the Django login follow the DingTalk one (only logins made here)."""
        if not hasattr(request, "session") or not hasattr(request, "user"):
            raise ImproperlyConfigured(
                "dingmw.django.middleware.DingTalkMiddleware must come after "
                "SessionMiddleware and AuthenticationMiddleware in MIDDLEWARE"
            )
        session = request.session
        if identity is None:
            if SESSION_KEY in session:
                auth.logout(request)  # the DingTalk session ended: so does this login
            return
        if session.get(SESSION_KEY) == identity.unionid and request.user.is_authenticated:
            return
        user = auth.authenticate(request, dingtalk_identity=identity)
        if user is None:
            if SESSION_KEY in session:
                auth.logout(request)
            return
        auth.login(request, user, backend=BACKEND)
        request.session[SESSION_KEY] = identity.unionid

    def after_own_route(self, request: HttpRequest, answer: WebResponse) -> None:
        """An answer that ends the DingTalk session (logout) ends the Django login too,
        whichever way it was made."""
        ended = f"{self.core.sessions.cookie_name}=;"
        if hasattr(request, "session") and any(
            name == "set-cookie" and value.startswith(ended) for name, value in answer.headers
        ):
            auth.logout(request)


def refuse_remote_user_before(middleware: type) -> None:
    """`ImproperlyConfigured` when a `RemoteUserMiddleware` runs before dingmw's in
    `MIDDLEWARE`: it would log in whoever a client names in its own `Remote-User` header
    (Django's ASGI handler reads it from the request) before dingmw removes the header."""
    from django.conf import settings
    from django.contrib.auth.middleware import RemoteUserMiddleware
    from django.utils.module_loading import import_string

    earlier: list[str] = []
    for path in getattr(settings, "MIDDLEWARE", None) or ():
        try:
            found = import_string(path) if isinstance(path, str) else path
        except ImportError:
            continue
        if isinstance(found, type) and issubclass(found, middleware):
            break
        if isinstance(found, type) and issubclass(found, RemoteUserMiddleware):
            earlier.append(path)
    else:
        return  # not in MIDDLEWARE (built by hand, as in a test)
    if earlier:
        raise ImproperlyConfigured(
            f"{', '.join(earlier)} comes before dingmw.django.middleware.DingTalkMiddleware "
            "in MIDDLEWARE: it would log in whoever a client names in a Remote-User header of "
            "its own before dingmw removes that header; put it after DingTalkMiddleware, or "
            "drop it (dingmw logs the DingTalk person in to Django itself)"
        )


@functools.cache
def admin_login_path() -> str | None:
    """The path of the admin's login page, when the admin is installed and routed."""
    from django.apps import apps
    from django.urls import NoReverseMatch, reverse

    if not apps.is_installed("django.contrib.admin"):
        return None
    try:
        return reverse("admin:login")
    except NoReverseMatch:
        return None


def web_request(request: HttpRequest) -> WebRequest:
    meta = request.META
    host = (
        meta.get("HTTP_HOST")
        or f"{meta.get('SERVER_NAME', 'localhost')}:{meta.get('SERVER_PORT', '80')}"
    )
    return WebRequest(
        method=request.method or "GET",
        scheme=request.scheme or "http",
        host=host,
        root_path=meta.get("SCRIPT_NAME", "") or "",
        path=request.path_info,
        query_string=meta.get("QUERY_STRING", ""),
        headers={k.lower(): v for k, v in request.headers.items()},
    )


def to_django(answer: WebResponse, *, head: bool = False) -> HttpResponse:
    response = HttpResponse(b"" if head else answer.body, status=answer.status)
    for name, value in answer.headers:
        if name.lower() == "set-cookie":
            cookie: http.cookies.SimpleCookie = http.cookies.SimpleCookie()
            cookie.load(value)
            response.cookies.update(cookie)
        else:
            response[name] = value
    return response
