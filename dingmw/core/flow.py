"""The login machine: every routing and transition decision, for ASGI and WSGI alike.

`Core.decide(request)` answers one of three things (see `core.outcome`):

* `Forward(identity)`: call the wrapped app (the hot path: one cookie
  lookup, a cached HMAC check, no response header added);
* `Respond(response)`: a page, a redirect, a 401, decided without I/O;
* `Exchange(flow)`: a callback, whose flow a driver runs (state use,
  DingTalk calls, allow-lists) to get the response.

Route table (under `DINGMW_PATH_PREFIX`), see `core.routes.ROUTES`:

    GET  /login      login page; sets a pending-login cookie (`core.state`)
    GET  /callback   state check → Exchange(code → identity → enrich → allow-lists → session);
                     `?jsapi_code=` (in-client login, DINGMW_CORP_ID) instead of the flow's code
    GET|POST /logout clear the session → 302 `next` or /
    GET  /me         identity JSON or 401
    GET  /auth       204 + X-DingTalk-* headers or 401 (nginx auth_request)
    GET  /healthz    200, no I/O; /readyz: Exchange(store ping → 200 or 503) (`core.health`)

Errors never escape as tracebacks: every `LoginError` becomes a page (or JSON
for non-browser clients) with the error's status.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol
from urllib.parse import quote

from ..config import Settings
from ..errors import BadRequestError, ForbiddenError, LoginError
from ..identity import Identity
from ..providers import Provider, inclient, make_provider
from ..providers.enrich import CorpDirectory
from . import health
from .effects import Flow
from .http import Headers, WebRequest, WebResponse
from .outcome import Decision, Exchange, Forward, Respond
from .redirects import external_base, forwarded_prefix, is_https, safe_next
from .responses import (
    NO_STORE,
    PAGE_HEADERS,
    choose_language,
    identity_headers,
    json_response,
    redirect_to_next,
    unauthorized,
)
from .routes import PublicPaths, Route, own_route, prefers_html, wants_html
from .session import Sessions
from .state import LoginStates, PendingLogin

log = logging.getLogger("dingmw")

FORWARD_ANONYMOUS = Forward(None)


class Finish(Protocol):
    """What a completed login answers; the default is a 302 to the saved `next`.

    `headers` forget the login state and set the new session cookie."""

    def __call__(
        self, req: WebRequest, identity: Identity, pending: PendingLogin, headers: Headers
    ) -> Flow[WebResponse]: ...


def finish_at_next(
    req: WebRequest, identity: Identity, pending: PendingLogin, headers: Headers
) -> Flow[WebResponse]:
    return redirect_to_next(req, identity, pending.next_path, headers)


class Renderer(Protocol):
    def __call__(self, template: str, lang: str, context: Mapping[str, Any]) -> str: ...


class Core:
    """The decisions of one middleware (or hub) instance; pure apart from the clock."""

    def __init__(
        self,
        settings: Settings,
        *,
        render: Renderer,
        clock: Callable[[], float] = time.time,
        provider: Provider | None = None,
        finish: Finish | None = None,
        login_page: str = "qr",
    ) -> None:
        self.settings = settings
        self.render = render
        self.clock = clock
        self.prefix = settings.path_prefix
        self.public = PublicPaths(settings.public_paths)
        self.sessions = Sessions(
            secret_keys=settings.secret_keys,
            cookie_name=settings.cookie_name,
            max_age=settings.session_max_age,
            path="/",
            domain=settings.cookie_domain,
            clock=clock,
        )
        self.states = LoginStates(
            secret_keys=settings.secret_keys,
            cookie_prefix=f"{settings.cookie_name}_state_",
            max_age=settings.state_max_age,
            domain=None,
            clock=clock,
        )
        self.provider = provider or make_provider(settings, clock)
        self.finish: Finish = finish or finish_at_next
        # DINGMW_LOGIN_PAGE, else the default of whoever runs this core (site: qr, hub: dingtalk).
        self.login_page = settings.login_page or login_page
        self.directory = (
            CorpDirectory(settings, clock)
            if settings.enrich == "detail" or inclient.enabled(settings)
            else None
        )
        self.in_client_login = (
            inclient.InClientLogin(settings, self.directory)
            if self.directory is not None and inclient.enabled(settings)
            else None
        )
        self._handlers: dict[Route, Callable[[WebRequest], Decision]] = {
            Route.LOGIN: self._login,
            Route.CALLBACK: self._callback,
            Route.LOGOUT: self._logout,
            Route.ME: self._me,
            Route.AUTH: self._auth,
            Route.HEALTHZ: lambda req: Respond(health.healthz()),
            Route.READYZ: lambda req: Exchange(health.readyz()),
        }

    # The entry points -----------------------------------------------------

    def quick(self, path: str, cookie_header: str) -> Forward | None:
        """The hot path, from the path and `Cookie` header alone.

        `Forward` for a request to the app that carries a valid session (or
        targets a public path); None means "build a `WebRequest` and call
        `decide`", which then answers every other case.
        """
        if path.startswith(self.prefix) and own_route(path, self.prefix) is not None:
            return None
        identity = self.sessions.load(cookie_header)
        if identity is not None:
            return Forward(identity)
        if self.public.match(path):
            return FORWARD_ANONYMOUS
        return None

    def behind_proxy(self, req: WebRequest) -> WebRequest:
        """`req` as the browser sees it: a trusted `X-Forwarded-Prefix` is its root path."""
        if self.settings.trust_proxy and "x-forwarded-prefix" in req.headers:
            return dataclasses.replace(req, root_path=forwarded_prefix(req))
        return req

    def decide(self, req: WebRequest) -> Decision:
        try:
            req = self.behind_proxy(req)
        except LoginError as exc:
            return Respond(self.error(req, exc))
        own = own_route(req.path, self.prefix)
        if own is None:
            identity = self.identity(req)
            if identity is not None or self.public.match(req.path):
                return Forward(identity)
            return Respond(self.login_required(req))
        route, methods = own
        handler = self._handlers.get(route)
        if handler is None:
            return Respond(self.error(req, BadRequestError("not_found"), status=404))
        if req.method not in methods:
            return Respond(
                self.error(
                    req,
                    BadRequestError("method_not_allowed"),
                    status=405,
                    headers=(("allow", ", ".join(sorted(methods))),),
                )
            )
        try:
            return handler(req)
        except LoginError as exc:
            return Respond(self.error(req, exc))

    def identity(self, req: WebRequest) -> Identity | None:
        return self.sessions.load(req.headers.get("cookie", ""))

    # Shared pieces ----------------------------------------------------------

    def own_url(self, req: WebRequest, route: str) -> str:
        """A path-absolute URL of one of the middleware's routes."""
        return f"{req.root_path}{self.prefix}/{route}"

    def login_url(self, req: WebRequest) -> str:
        target = req.root_path + req.path + (f"?{req.query_string}" if req.query_string else "")
        next_path = safe_next(target) or "/"
        return f"{self.own_url(req, 'login')}?next={quote(next_path, safe='/')}"

    def guarded(self, req: WebRequest, flow: Flow[WebResponse]) -> Flow[WebResponse]:
        """`flow`, with any `LoginError` (a store outage, say) answered as an error page."""
        try:
            return (yield from flow)
        except LoginError as exc:
            return self.error(req, exc)

    def login_required(self, req: WebRequest) -> WebResponse:
        login_url = self.login_url(req)
        if wants_html(req.method, req.headers.get("accept", "")):
            return WebResponse(status=302, headers=(("location", login_url), NO_STORE))
        return unauthorized(login_url)

    def language(self, req: WebRequest) -> str:
        return choose_language(req.headers.get("accept-language", ""))

    def error(
        self, req: WebRequest, exc: LoginError, *, status: int | None = None, headers: Headers = ()
    ) -> WebResponse:
        status = status or exc.status
        if exc.status >= 500:
            log.warning(
                "dingmw: %s%s: %s",
                exc.reason,
                f" in {exc.params['call']}" if "call" in exc.params else "",
                exc.detail or "-",
            )
        # A 503 concerns our own infrastructure (addresses): in the log, not the answer.
        detail = "" if exc.status == 503 else exc.detail
        if not prefers_html(req.headers.get("accept", "")):
            data: dict[str, Any] = {"error": exc.reason}
            if detail:
                data["detail"] = detail
            data.update(exc.params)
            return json_response(status, data, headers)
        page = self.render(
            "error.html",
            self.language(req),
            {
                "status": status,
                "reason": exc.reason,
                "detail": detail,
                "params": exc.params,
                "login_url": self.own_url(req, "login"),
                "home_url": (req.root_path or "") + "/",
            },
        )
        return WebResponse(status=status, headers=(*PAGE_HEADERS, *headers), body=page.encode())

    def redirect_uri(self, req: WebRequest) -> str:
        return f"{external_base(req, self.settings)}{self.prefix}/callback"

    def state_cookie_path(self, req: WebRequest) -> str:
        return f"{req.root_path}{self.prefix}/"

    # Routes -------------------------------------------------------------------

    def _login(self, req: WebRequest) -> Decision:
        query = req.query()
        next_path = safe_next(query.get("next")) or "/"
        if self.identity(req) is not None and not query.get("switch"):
            return Respond(WebResponse(status=302, headers=(("location", next_path), NO_STORE)))
        return Respond(self.start_login(req, next_path))

    def start_login(
        self,
        req: WebRequest,
        next_path: str,
        *,
        extra: Mapping[str, str] | None = None,
        redirect_uri: str | None = None,
    ) -> WebResponse:
        """A new login state bound to this browser, then DingTalk's own login page (302) or
        ours with the QR (`DINGMW_LOGIN_PAGE`). `extra` travels in the signed state;
        `redirect_uri` (default: this site's `/callback`) is where DingTalk sends the code."""
        secure = is_https(req, self.settings)
        redirect_uri = redirect_uri or self.redirect_uri(req)
        state, cookies = self.states.begin(
            next_path,
            cookies=req.cookies(),
            path=self.state_cookie_path(req),
            secure=secure,
            extra=extra,
        )
        widget = self.provider.widget(state=state, redirect_uri=redirect_uri)
        set_cookies = tuple(("set-cookie", c) for c in cookies)
        hosted = widget.hosted_url if self.login_page == "dingtalk" else None
        if widget.widget == "redirect" or (hosted and not self.in_client(req)):
            location = ("location", hosted or widget.authorize_url)
            return WebResponse(status=302, headers=(location, NO_STORE, *set_cookies))
        config: dict[str, Any] = {
            "flow": self.settings.flow,
            "state": state,
            "login_origin": widget.login_origin,
            "authorize_url": widget.authorize_url,
            "widget": widget.widget,
            "script_url": widget.script_url,
            "redirect_uri": redirect_uri,
            **widget.extra,
        }
        jsapi_url = None
        if self.in_client(req):
            jsapi_url = self.settings.jsapi_script_url
            config.update(inclient.page_config(self.settings))
        page = self.render(
            "login.html",
            self.language(req),
            {
                "config": config,
                "next": next_path,
                "script_url": widget.script_url,
                "jsapi_url": jsapi_url,
            },
        )
        headers = (*PAGE_HEADERS, *set_cookies)
        return WebResponse(status=200, headers=headers, body=page.encode())

    def in_client(self, req: WebRequest) -> bool:
        """Inside the DingTalk client (its User-Agent says so) with silent login configured."""
        return inclient.inside_dingtalk(self.settings, req.headers.get("user-agent", ""))

    def _callback(self, req: WebRequest) -> Decision:
        query = req.query()
        cookies = req.cookies()
        secure = is_https(req, self.settings)
        path = self.state_cookie_path(req)
        if "error" in query:
            state_cookie = self.states.cookie_name(query.get("state") or "-")
            clear = (
                (("set-cookie", self.states.forget(state_cookie, path=path, secure=secure)),)
                if state_cookie in cookies
                else ()
            )
            refused = BadRequestError("dingtalk_denied", query["error"][:200])
            return Respond(self.error(req, refused, headers=clear))
        pending = self.states.check(query.get("state"), cookies)
        forget = ("set-cookie", self.states.forget(pending.cookie_name, path=path, secure=secure))
        in_client = self.in_client_login
        jsapi_code = in_client.code_from(query) if in_client is not None else None
        if in_client is not None and jsapi_code:
            exchange = in_client.exchange(jsapi_code)
        else:
            code = self.provider.code_from(query)
            if not code:
                return Respond(self.error(req, BadRequestError("code_missing"), headers=(forget,)))
            exchange = self.provider.exchange(
                code, redirect_uri=self.redirect_uri(req), state=pending.nonce
            )
        return Exchange(self._complete(req, pending, exchange, secure, forget))

    def _complete(
        self,
        req: WebRequest,
        pending: PendingLogin,
        exchange: Flow[Identity],
        secure: bool,
        forget: tuple[str, str],
    ) -> Flow[WebResponse]:
        try:
            yield from self.states.consume(pending)
            if self.directory is not None and self.settings.enrich == "detail":
                identity = yield from self.directory.after(exchange)
            else:
                identity = yield from exchange
            self.admit(identity)
        except LoginError as exc:
            log.info("dingmw: login failed: %s", exc.reason)
            return self.error(req, exc, headers=(forget,))
        log.info("dingmw: login unionid=%s userid=%s", identity.unionid, identity.userid or "-")
        session = ("set-cookie", self.sessions.issue(identity, secure=secure))
        try:
            return (yield from self.finish(req, identity, pending, (forget, session)))
        except LoginError as exc:
            return self.error(req, exc, headers=(forget,))

    def admit(self, identity: Identity) -> None:
        """Apply the allow-lists; `ForbiddenError` names who was refused."""
        s = self.settings
        who = {"who": identity.display_name, "unionid": identity.unionid}
        if s.allowed_corp_ids and identity.corp_id not in s.allowed_corp_ids:
            raise ForbiddenError("corp_not_allowed", **who)
        if s.allowed_users and not ({identity.unionid, identity.userid} & s.allowed_users):
            raise ForbiddenError("user_not_allowed", **who)
        if s.allowed_dept_ids and not (set(identity.dept_ids) & s.allowed_dept_ids):
            raise ForbiddenError("dept_not_allowed", **who)

    def _logout(self, req: WebRequest) -> Decision:
        target = safe_next(req.query().get("next")) or f"{req.root_path}/"
        clear = self.sessions.clear(secure=is_https(req, self.settings))
        return Respond(
            WebResponse(status=302, headers=(("location", target), NO_STORE, ("set-cookie", clear)))
        )

    def _me(self, req: WebRequest) -> Decision:
        identity = self.identity(req)
        if identity is None:
            return Respond(unauthorized(self.own_url(req, "login")))
        return Respond(json_response(200, identity.to_dict()))

    def _auth(self, req: WebRequest) -> Decision:
        identity = self.identity(req)
        if identity is None:
            return Respond(unauthorized(self.own_url(req, "login")))
        return Respond(WebResponse(status=204, headers=(*identity_headers(identity), NO_STORE)))
