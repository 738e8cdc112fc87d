"""The login machine: every routing and transition decision, for ASGI and WSGI alike.

`Core.decide(request)` answers one of three things (see `core.outcome`):

* `Forward(identity)`: call the wrapped app (the hot path: one cookie
  lookup, one hit in the cache of verified sessions, no response header added);
* `Respond(response)`: a page, a redirect, a 401, decided without I/O;
* `Exchange(flow)`: a flow a driver runs (a callback's state use, DingTalk
  calls and allow-lists; a logout's revocation; a session's re-check against
  the store's revocations), whose result is the response, or a `Forward` when
  a re-checked session may go on to the app.

Route table (under `DINGMW_PATH_PREFIX`), see `core.routes.ROUTES`:

    GET  /login      login page; sets a pending-login cookie (`core.state`)
    GET  /callback   state check → Exchange(code → identity → enrich → allow-lists → session);
                     `?jsapi_code=` (in-client login, DINGMW_CORP_ID) instead of the flow's code
    GET|POST /logout revoke the session (`?everywhere=1`: every session of the person)
                     and clear it → 302 `next` or /; POST must be same-origin, a GET
                     from another site gets a confirm page
    GET  /me         identity JSON or 401
    GET  /auth       204 + X-DingTalk-* headers or 401 (nginx auth_request)
    GET  /healthz    200, no I/O; /readyz: Exchange(store ping → 200 or 503) (`core.health`)

Errors never escape as tracebacks: every `LoginError` becomes a page (or JSON
for non-browser clients) with the error's status; `core.pages` renders both.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

from .. import logs, metrics
from ..access import Access
from ..config import Settings
from ..errors import BadRequestError, ForbiddenError, LoginError, StateError
from ..identity import Identity
from ..providers import Provider, inclient, make_provider
from ..providers.enrich import CorpDirectory
from . import health
from .effects import Flow
from .http import Headers, WebRequest, WebResponse
from .outcome import Decision, Exchange, Forward, Respond
from .pages import Pages
from .pages import Renderer as Renderer  # importable from here, as before
from .redirects import (
    external_base,
    forwarded_prefix,
    is_https,
    prefix_of,
    safe_next,
    same_origin,
    same_origin_path,
)
from .responses import (
    NO_STORE,
    identity_headers,
    json_response,
    redirect_to_next,
    unauthorized,
)
from .revocation import hub_audience, is_revoked, revoke_person, revoke_session, site_audience
from .routes import PublicPaths, Route, own_route, own_url, wants_html
from .session import Entry, SessionCache, Sessions
from .state import LoginStates, PendingLogin

log = logging.getLogger("dingmw")

FORWARD_ANONYMOUS = Forward(None)

# What a route does once the request's session is known (None: no valid session).
Then = Callable[[Identity | None], Decision]
D = TypeVar("D", bound=Decision)


def settle(decision: Decision) -> Flow[WebResponse | Forward]:
    """A decision as the result of a flow: its response, its forward, or its flow's result."""
    if isinstance(decision, Exchange):
        return (yield from decision.flow)
    return decision.response if isinstance(decision, Respond) else decision


def state_cookie_prefix(cookie_name: str) -> str:
    """Login-state cookies live under the prefix path, so `__Host-` becomes `__Secure-`."""
    if cookie_name.startswith("__Host-"):
        return f"__Secure-{cookie_name[len('__Host-') :]}_state_"
    return f"{cookie_name}_state_"


class Finish(Protocol):
    """What a completed login answers; the default is a 302 to the saved `next`.

    `headers` forget the login state and set the new session cookie."""

    def __call__(
        self, req: WebRequest, identity: Identity, pending: PendingLogin, headers: Headers
    ) -> Flow[WebResponse]: ...


class Refused(Protocol):
    """What a login refused after its state was checked answers (DingTalk's `?error=`, the
    allow-lists, DingTalk or the store failing); None: the error page."""

    def __call__(
        self, req: WebRequest, pending: PendingLogin, exc: LoginError, headers: Headers
    ) -> WebResponse | None: ...


def finish_at_next(
    req: WebRequest, identity: Identity, pending: PendingLogin, headers: Headers
) -> Flow[WebResponse]:
    return redirect_to_next(req, identity, pending.next_path, headers)


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
        refused: Refused | None = None,
        login_page: str = "qr",
        cache: SessionCache,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.pages = Pages(settings, render)
        # dingmw's pages and error answers (`core.pages`), as the routes and the hub use them.
        self.page = self.pages.page
        self.error = self.pages.error
        self.prefix = settings.path_prefix
        self.public = PublicPaths(settings.public_paths)
        self.audience = site_audience(settings)
        # The audiences whose "everywhere" revocations reach this site's sessions.
        self.audiences: tuple[str, ...] = (self.audience,)
        if settings.hub_url:  # a site that logs in through a hub honours its logouts
            self.audiences += (hub_audience(settings.hub_url),)
        self.sessions = Sessions(
            secret_keys=settings.secret_keys,
            cookie_name=settings.cookie_name,
            max_age=settings.session_max_age,
            path="/",
            domain=settings.cookie_domain,
            clock=clock,
            cache=cache,
            audience=self.audience,
            recheck=settings.session_recheck,
        )
        # The hot path, nothing built: `hit(path, cookie_header)` is `Forward` for a request
        # to the app that carries a verified session whose re-check is not due, else None
        # (then `missed`). One function with everything bound (`Sessions.hot`).
        self.hit: Callable[[str, str], Forward | None] = self.sessions.hot(self.prefix)
        self.states = LoginStates(
            secret_keys=settings.secret_keys,
            cookie_prefix=state_cookie_prefix(settings.cookie_name),
            max_age=settings.state_max_age,
            domain=None,
            clock=clock,
            audience=self.audience,
        )
        self.provider = provider or make_provider(settings, clock)
        if settings.metrics:
            metrics.enable()
        if settings.log_format == "json":
            logs.use_json()
        self.finish: Finish = finish or finish_at_next
        self.refused = refused
        self._prefixes: dict[str, bool] = {}
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
            Route.METRICS: lambda req: Respond(health.metrics_page(settings, req)),
        }

    # The entry points -----------------------------------------------------

    def quick(
        self,
        path: str,
        cookie_header: str,
        request: Callable[[], WebRequest] | None = None,
    ) -> Forward | Exchange | None:
        """The hot path, from the path and `Cookie` header alone.

        `Forward` for a request to the app that carries a verified session
        whose re-check is not due (or targets a public path). With `request`
        (which builds the `WebRequest` when needed), a cached session whose
        re-check is due gets it here, as an `Exchange` that ends in its
        `Forward` (or in `decide(request())`'s answer when the session is
        refused, revoked or the store fails). None means "build a `WebRequest`
        and call `decide`", which answers every other case.
        """
        return self.hit(path, cookie_header) or self.missed(path, cookie_header, request)

    def missed(
        self,
        path: str,
        cookie_header: str,
        request: Callable[[], WebRequest] | None = None,
    ) -> Forward | Exchange | None:
        """`quick` for a request `hit` has already answered None: the cache is not asked
        for the session's identity again."""
        if path.startswith(self.prefix) and own_route(path, self.prefix) is not None:
            return None
        if request is not None:
            due = self.sessions.due(cookie_header)
            if due is not None:
                return Exchange(self._quick_recheck(*due, request))
        if self.public.match(path) and not self.sessions.has_cookie(cookie_header):
            return FORWARD_ANONYMOUS  # a session not cached yet is opened by `decide`
        return None

    def _quick_recheck(
        self, value: str, entry: Entry, request: Callable[[], WebRequest]
    ) -> Flow[WebResponse | Forward]:
        """A cached session's periodic re-check, without building the request when the
        session is still good (the common case: the allow-lists, then the store's
        revocations). A store that fails is answered at once (its 503: asking it again
        would double the wait); anything else is `decide`d in full, which checks again and
        answers as usual: the allow-lists' 403, a revoked session read as none."""
        session = entry.session
        identity = session.identity
        try:
            self.admit(identity)
            revoked = yield from is_revoked(
                session.sid, identity.unionid, session.issued_ms, self.audiences
            )
        except ForbiddenError:
            revoked = True
        except LoginError as exc:
            req = request()
            with contextlib.suppress(LoginError):  # the adapters refused a bad prefix already
                req = self.behind_proxy(req)
            return self.error(req, exc)
        if not revoked:
            self.sessions.checked(entry)
            return entry.forward
        return (yield from settle(self.decide(request())))

    def prefix_refused(self, header: str) -> bool:
        """Whether a trusted `X-Forwarded-Prefix` value is one `behind_proxy` refuses (400):
        the adapters ask before their fast paths, which never build a `WebRequest`. A proxy
        sends one value again and again: the answers are remembered (a few dozen at most)."""
        known = self._prefixes.get(header)
        if known is None:
            try:
                prefix_of(header)
                known = False
            except LoginError:
                known = True
            if len(self._prefixes) >= 64:
                self._prefixes.clear()
            self._prefixes[header] = known
        return known

    def behind_proxy(self, req: WebRequest) -> WebRequest:
        """`req` as the browser sees it: a trusted `X-Forwarded-Prefix` is its root path."""
        if self.settings.trust_proxy and "x-forwarded-prefix" in req.headers:
            return dataclasses.replace(req, root_path=forwarded_prefix(req))
        return req

    def decide(self, req: WebRequest) -> Decision:
        logs.begin_request(req.headers.get("x-request-id"))
        try:
            req = self.behind_proxy(req)
        except LoginError as exc:
            return Respond(self.error(req, exc))
        own = own_route(req.path, self.prefix)
        if own is None:
            try:
                return self.with_session(req, lambda identity: self._app(req, identity))
            except LoginError as exc:
                return Respond(self.error(req, exc))
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
            if route is Route.CALLBACK:
                metrics.login_failed(self.settings.flow, exc.reason)
            return Respond(self.error(req, exc))

    def _app(self, req: WebRequest, identity: Identity | None) -> Decision:
        if identity is not None or self.public.match(req.path):
            return Forward(identity)
        return Respond(self.login_required(req))

    # Sessions -----------------------------------------------------------------

    def with_session(
        self,
        req: WebRequest,
        then: Callable[[Identity | None], D],
        *,
        refused_as_anonymous: bool = False,
    ) -> D | Respond | Exchange:
        """`then(identity)` for the request's session, re-checked first when that is due.

        A session is re-checked when this process first sees it and then every
        `DINGMW_SESSION_RECHECK` seconds: the allow-lists, then the store's
        revocations (an `Exchange`). A revoked session reads as none; one the
        allow-lists refuse gets their 403 page (or reads as none with
        `refused_as_anonymous`, for the login page). The store failing is a 503.
        """
        found = self.sessions.lookup(req.cookie_header)
        if found is None:
            return then(None)
        value, entry = found
        if self.sessions.is_due(entry):
            return Exchange(self._recheck(req, value, entry, then, refused_as_anonymous))
        if entry.refused is not None:
            return then(None) if refused_as_anonymous else Respond(self.error(req, entry.refused))
        return then(entry.session.identity)

    def _recheck(
        self, req: WebRequest, value: str, entry: Entry, then: Then, anonymous: bool
    ) -> Flow[WebResponse | Forward]:
        session = entry.session
        identity = session.identity
        try:
            self.admit(identity)
        except ForbiddenError as exc:
            log.info(
                "dingmw: session refused by the allow-lists: %s unionid=%s",
                exc.reason,
                identity.unionid,
            )
            self.sessions.checked(entry, exc)
            decision = then(None) if anonymous else Respond(self.error(req, exc))
            return (yield from settle(decision))
        try:
            revoked = yield from is_revoked(
                session.sid, identity.unionid, session.issued_ms, self.audiences
            )
        except LoginError as exc:
            return self.error(req, exc)
        if revoked:
            log.info("dingmw: revoked session refused unionid=%s", identity.unionid)
            self.sessions.forget(value)
            return (yield from settle(then(None)))
        self.sessions.checked(entry)
        return (yield from settle(then(identity)))

    def revoke_everywhere(
        self, unionid: str, *, audiences: tuple[str, ...] | None = None
    ) -> Flow[None]:
        """Revoke every session of `unionid` issued until now, on every site of this audience.

        `audiences` defaults to this site's; pass `hub_audience(url)` (from
        `core.revocation`) to reach the sites that log in through the hub at `url`.
        This process's cached sessions of the person are re-checked at once.
        """
        now = self.clock()
        for audience in audiences or (self.audience,):
            yield from revoke_person(unionid, audience, now, self.settings.session_max_age)
        self.sessions.recheck_person(unionid)

    # Shared pieces ----------------------------------------------------------

    def own_url(self, req: WebRequest, route: str) -> str:
        """A path-absolute URL of one of the middleware's routes."""
        return own_url(req, self.prefix, route)

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

    def redirect_uri(self, req: WebRequest) -> str:
        return f"{external_base(req, self.settings)}{self.prefix}/callback"

    def state_cookie_path(self, req: WebRequest) -> str:
        return f"{req.root_path}{self.prefix}/"

    # Routes -------------------------------------------------------------------

    def _login(self, req: WebRequest) -> Decision:
        query = req.query()
        next_path = safe_next(same_origin_path(query.get("next"), req, self.settings)) or "/"
        if query.get("switch"):
            return Respond(self.start_login(req, next_path))
        return self.with_session(
            req,
            lambda identity: Respond(
                self.start_login(req, next_path)
                if identity is None
                else WebResponse(status=302, headers=(("location", next_path), NO_STORE))
            ),
            refused_as_anonymous=True,
        )

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
        metrics.login_started(self.settings.flow)
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
        context = {
            "config": config,
            "next": next_path,
            "script_url": widget.script_url,
            "script_integrity": self.settings.script_integrity(widget.script_url),
            "jsapi_url": jsapi_url,
            "jsapi_integrity": self.settings.script_integrity(jsapi_url),
        }
        return self.page(req, "login.html", context, headers=set_cookies)

    def in_client(self, req: WebRequest) -> bool:
        """Inside the DingTalk client (its User-Agent says so) with silent login configured."""
        return inclient.inside_dingtalk(self.settings, req.headers.get("user-agent", ""))

    def _callback(self, req: WebRequest) -> Decision:
        query = req.query()
        cookies = req.cookies()
        secure = is_https(req, self.settings)
        path = self.state_cookie_path(req)
        if "error" in query:
            return self._denied(req, query, cookies, path, secure)
        try:
            pending = self.states.check(query.get("state"), cookies)
        except StateError as exc:
            if not self.sessions.has_cookie(req.cookie_header):
                raise
            # A callback used again (Back, a reload) by a browser that may still be logged in.
            refused = exc
            metrics.login_failed(self.settings.flow, exc.reason)
            return self.with_session(
                req, lambda identity: Respond(self._state_refused(req, refused, identity))
            )
        forget = ("set-cookie", self.states.forget(pending.cookie_name, path=path, secure=secure))
        in_client = self.in_client_login
        jsapi_code = in_client.code_from(query) if in_client is not None else None
        if in_client is not None and jsapi_code:
            exchange = in_client.exchange(jsapi_code)
        else:
            code = self.provider.code_from(query)
            if not code:
                metrics.login_failed(self.settings.flow, "code_missing")
                return Respond(self.error(req, BadRequestError("code_missing"), headers=(forget,)))
            exchange = self.provider.exchange(
                code, redirect_uri=self.redirect_uri(req), state=pending.nonce
            )
        return Exchange(self._complete(req, pending, exchange, secure, forget))

    def _state_refused(
        self, req: WebRequest, exc: StateError, identity: Identity | None
    ) -> WebResponse:
        """The state's error page; to a person still logged in, it says so (and links home)."""
        if identity is not None:
            exc = StateError(
                exc.reason, exc.detail, **exc.params, logged_in_as=identity.display_name
            )
        return self.error(req, exc)

    def _denied(
        self,
        req: WebRequest,
        query: Mapping[str, str],
        cookies: Mapping[str, str],
        path: str,
        secure: bool,
    ) -> Decision:
        """DingTalk answered `?error=`: the state is used up (when it is valid) and forgotten."""
        refused = BadRequestError("dingtalk_denied", query["error"][:200])
        metrics.login_failed(self.settings.flow, refused.reason)
        state_cookie = self.states.cookie_name(query.get("state") or "-")
        clear: Headers = (
            (("set-cookie", self.states.forget(state_cookie, path=path, secure=secure)),)
            if state_cookie in cookies
            else ()
        )
        try:
            pending = self.states.check(query.get("state"), cookies)
        except StateError:
            return Respond(self.error(req, refused, headers=clear))
        return Exchange(self._consume_denied(req, pending, refused, clear))

    def _consume_denied(
        self, req: WebRequest, pending: PendingLogin, refused: LoginError, clear: Headers
    ) -> Flow[WebResponse]:
        try:
            yield from self.states.consume(pending)
        except LoginError as exc:
            log.info("dingmw: refused login's state not recorded: %s", exc.reason)
        return self._refusal(req, pending, refused, clear)

    def _refusal(
        self, req: WebRequest, pending: PendingLogin, exc: LoginError, headers: Headers
    ) -> WebResponse:
        answer = self.refused(req, pending, exc, headers) if self.refused is not None else None
        return answer if answer is not None else self.error(req, exc, headers=headers)

    def _complete(
        self,
        req: WebRequest,
        pending: PendingLogin,
        exchange: Flow[Identity],
        secure: bool,
        forget: tuple[str, str],
    ) -> Flow[WebResponse]:
        started = self.clock()
        try:
            yield from self.states.consume(pending)
            if self.directory is not None and self.settings.enrich == "detail":
                identity = yield from self.directory.after(exchange)
            else:
                identity = yield from exchange
            self.admit(identity)
        except LoginError as exc:
            outcome = logs.fields(
                event="login",
                outcome="failed",
                flow=self.settings.flow,
                reason=exc.reason,
                call=exc.params.get("call"),
                status=exc.status,
                latency_ms=round((self.clock() - started) * 1000, 1),
            )
            log.info("dingmw: login failed: %s", exc.reason, extra=outcome)
            metrics.login_failed(self.settings.flow, exc.reason)
            return self._refusal(req, pending, exc, (forget,))
        metrics.login_completed(identity.flow)
        outcome = logs.fields(
            event="login",
            outcome="ok",
            flow=identity.flow,
            latency_ms=round((self.clock() - started) * 1000, 1),
        )
        log.info(
            "dingmw: login unionid=%s userid=%s",
            identity.unionid,
            identity.userid or "-",
            extra=outcome,
        )
        session = ("set-cookie", self.sessions.issue(identity, secure=secure))
        try:
            return (yield from self.finish(req, identity, pending, (forget, session)))
        except LoginError as exc:
            return self.error(req, exc, headers=(forget,))

    def admit(self, identity: Identity) -> None:
        """Apply the allow-lists (`Access`'s rule); `ForbiddenError` names who was refused."""
        s = self.settings  # read at each call: a settings reload applies at the next check
        refusal = Access(s.allowed_users, s.allowed_dept_ids, s.allowed_corp_ids).refusal(identity)
        if refusal is not None:
            raise refusal

    def _logout(self, req: WebRequest) -> Decision:
        query = req.query()
        everywhere = query.get("everywhere", "") in ("1", "true", "yes")
        target = safe_next(query.get("next")) or f"{req.root_path}/"
        if req.method == "POST":
            if not same_origin(req, self.settings, navigation=False):
                return Respond(self.error(req, ForbiddenError("cross_site_logout")))
        elif (
            req.method != "GET"
            or everywhere
            or not same_origin(req, self.settings, navigation=True)
        ):
            return Respond(self._confirm_logout(req, target, everywhere))
        clear = ("set-cookie", self.sessions.clear(secure=is_https(req, self.settings)))
        done = WebResponse(status=302, headers=(("location", target), NO_STORE, clear))
        found = self.sessions.lookup(req.cookie_header)
        if found is None:
            return Respond(done)
        value, entry = found
        return Exchange(self._revoke(req, value, entry, everywhere, done, clear))

    def _confirm_logout(self, req: WebRequest, target: str, everywhere: bool) -> WebResponse:
        """A page whose button logs out by a same-origin POST (a link from elsewhere cannot)."""
        params = f"next={quote(target, safe='/')}" + ("&everywhere=1" if everywhere else "")
        action = f"{self.own_url(req, 'logout')}?{params}"
        return self.page(
            req,
            "logout.html",
            {"action": action, "everywhere": everywhere, "cancel_url": target},
        )

    def _revoke(
        self,
        req: WebRequest,
        value: str,
        entry: Entry,
        everywhere: bool,
        done: WebResponse,
        clear: tuple[str, str],
    ) -> Flow[WebResponse]:
        session = entry.session
        unionid = session.identity.unionid
        self.sessions.forget(value)
        try:
            yield from revoke_session(session.sid, session.expires, self.clock())
            if everywhere:
                yield from self.revoke_everywhere(unionid)
        except LoginError as exc:
            return self.error(req, exc, headers=(clear,))
        log.info("dingmw: logout unionid=%s%s", unionid, " everywhere" if everywhere else "")
        return done

    def _me(self, req: WebRequest) -> Decision:
        return self.with_session(req, lambda identity: self._me_answer(req, identity))

    def _me_answer(self, req: WebRequest, identity: Identity | None) -> Decision:
        if identity is None:
            return Respond(unauthorized(self.own_url(req, "login")))
        return Respond(json_response(200, identity.to_dict()))

    def _auth(self, req: WebRequest) -> Decision:
        return self.with_session(req, lambda identity: self._auth_answer(req, identity))

    def _auth_answer(self, req: WebRequest, identity: Identity | None) -> Decision:
        if identity is None:
            return Respond(unauthorized(self.own_url(req, "login")))
        return Respond(WebResponse(status=204, headers=(*identity_headers(identity), NO_STORE)))
