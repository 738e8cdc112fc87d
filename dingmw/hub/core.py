"""The hub's decisions, sans-I/O: what `core.flow.Core` is for the middleware.

`HubCore.decide(request)` answers `Respond(response)` or `Exchange(flow)`
(`core.outcome`); the ASGI glue (`hub.app`) only translates. Route table
(under `DINGMW_PATH_PREFIX`, `/dingtalk` by default):

    GET  /authorize   seed 002: ?redirect_url=&client_id=&state=  → a code for the site
    GET  /login, /callback, /logout, /me, /auth   the hub's own DingTalk login (the `Core`)
    POST /token       HTTP Basic; code=…&state=… or grant_type=refresh_token&refresh_token=…
    GET  /userinfo    Authorization: [Bearer] <access_token> → {username, email, …identity}
    GET  /healthz, /readyz   the middleware's probes (`core.health`)
    GET  /healthz     (at the root) 200, no I/O

Without a hub session, `/authorize` starts the hub's DingTalk login with the
authorization request in the login state, and DingTalk's `redirect_uri` is
`/callback?forward_url=<the site's redirect URL>` (seed 002). The callback
checks `forward_url` against that request, mints a one-time code and sends the
browser to the site. With a hub session `/authorize` answers at once.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from ..config import Settings
from ..core.effects import Flow
from ..core.flow import Core, Renderer
from ..core.http import Headers, WebRequest, WebResponse, iri_to_uri
from ..core.outcome import Exchange, Forward, Respond
from ..core.responses import NO_STORE, json_response, redirect_to_next
from ..core.routes import own_route
from ..core.session import SessionCache
from ..core.state import PendingLogin
from ..errors import BadRequestError, ConfigError, LoginError
from ..identity import Identity
from ..rendering import render
from .authorization import Authorization, seed_request
from .errors import GrantError, grant_error, oauth_error
from .registry import Registry
from .tokens import HubTokens, IssuedTokens

log = logging.getLogger("dingmw")

MAX_BODY = 16 * 1024
HubDecision = Respond | Exchange

GET = frozenset({"GET"})
READ = frozenset({"GET", "HEAD"})
POST = frozenset({"POST"})


@dataclasses.dataclass(frozen=True, slots=True)
class HubRoute:
    handler: Callable[[WebRequest], HubDecision]
    methods: frozenset[str]
    api: bool = False  # for programs: errors are OAuth JSON, never pages


def with_query(url: str, params: dict[str, str]) -> str:
    joiner = "&" if urlsplit(url).query else "?"
    return iri_to_uri(f"{url}{joiner}{urlencode(params)}")


def userinfo_body(identity: Identity) -> dict[str, Any]:
    """The hub's userinfo: the seed's `username` and `email`, plus every identity field."""
    return {"username": identity.remote_user, **identity.to_dict()}


def _unavailable(exc: LoginError) -> WebResponse:
    """The store (or something else the hub needs) failed: say so, accept nothing."""
    return json_response(
        exc.status, {"error": "temporarily_unavailable", "error_description": exc.reason}
    )


class HubCore:
    """Every decision of one hub instance; pure apart from the clock."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        render: Renderer = render,
        cache: SessionCache,
    ) -> None:
        if not settings.hub_clients:
            raise ConfigError("DINGMW_HUB_CLIENTS must register at least one site for the hub")
        self.settings = settings
        self.clients = Registry(settings.hub_clients)
        self.tokens = HubTokens(settings)
        self.core = Core(
            settings,
            render=render,
            clock=clock,
            finish=self.finish,
            login_page="dingtalk",
            cache=cache,
        )
        prefix = settings.path_prefix
        self.routes: dict[str, HubRoute] = {
            f"{prefix}/authorize": HubRoute(self.authorize, GET),  # a HEAD must not mint a code
            f"{prefix}/token": HubRoute(self.token, POST, api=True),
            f"{prefix}/userinfo": HubRoute(self.userinfo, READ | POST, api=True),
            "/healthz": HubRoute(self.health, READ, api=True),
        }

    # The entry points -----------------------------------------------------

    def reads_body(self, req: WebRequest) -> bool:
        """Whether the glue must read the request body (at most `MAX_BODY` + 1 bytes)."""
        route = self.routes.get(req.path)
        return route is not None and req.method == "POST" and "POST" in route.methods

    def decide(self, req: WebRequest) -> HubDecision:
        try:
            req = self.core.behind_proxy(req)
        except LoginError as exc:
            return Respond(self.core.error(req, exc))
        route = self.routes.get(req.path)
        if route is None:
            return self._core_route(req)
        if req.method not in route.methods:
            return Respond(self.method_not_allowed(req, route))
        if len(req.body) > MAX_BODY:
            return Respond(oauth_error(413, "invalid_request", "body too large"))
        try:
            return route.handler(req)
        except LoginError as exc:
            return Respond(self.core.error(req, exc))

    def _core_route(self, req: WebRequest) -> HubDecision:
        """The hub's own login routes are the middleware's; every other path is unknown."""
        if own_route(req.path, self.settings.path_prefix) is None:
            return Respond(self.core.error(req, BadRequestError("not_found"), status=404))
        decision = self.core.decide(req)
        if isinstance(decision, Forward):  # pragma: no cover - own routes never forward
            return Respond(self.core.error(req, BadRequestError("not_found"), status=404))
        return decision

    def method_not_allowed(self, req: WebRequest, route: HubRoute) -> WebResponse:
        methods = sorted(route.methods)
        allow = (("allow", ", ".join(methods)),)
        if route.api:
            return oauth_error(405, "invalid_request", f"use {' or '.join(methods)}", allow)
        refused = BadRequestError("method_not_allowed")
        return self.core.error(req, refused, status=405, headers=allow)

    # Routes ---------------------------------------------------------------

    def health(self, req: WebRequest) -> HubDecision:
        return Respond(WebResponse(status=200, headers=(NO_STORE,), body=b"ok\n"))

    def authorize(self, req: WebRequest) -> HubDecision:
        client_id, redirect_url, state = seed_request(req.query())
        client = self.clients.redirect(client_id, redirect_url)
        auth = Authorization(
            client_id=client.client_id, redirect_url=str(redirect_url), state=state
        )
        return self.core.with_session(req, lambda identity: self._authorized(req, auth, identity))

    def _authorized(
        self, req: WebRequest, auth: Authorization, identity: Identity | None
    ) -> HubDecision:
        if identity is None:
            return Respond(self.start_login(req, auth))
        return Exchange(self.core.guarded(req, self.grant(auth, identity, ())))

    def start_login(self, req: WebRequest, auth: Authorization) -> WebResponse:
        """The hub's DingTalk login for `auth`; DingTalk comes back to
        `/callback?forward_url=<the site's redirect URL>` (seed 002)."""
        callback = with_query(self.core.redirect_uri(req), {"forward_url": auth.redirect_url})
        home = f"{req.root_path}/"
        return self.core.start_login(req, home, extra=auth.dump(), redirect_uri=callback)

    def finish(
        self, req: WebRequest, identity: Identity, pending: PendingLogin, headers: Headers
    ) -> Flow[WebResponse]:
        """After the hub's DingTalk login: straight back to the site that asked, if one did."""
        if pending.extra is None:  # someone logged in at the hub itself
            return (yield from redirect_to_next(req, identity, pending.next_path, headers))
        auth = Authorization.load(pending.extra)
        forward_url = req.query().get("forward_url")
        if forward_url != auth.redirect_url:
            raise BadRequestError(
                "redirect_not_registered",
                "forward_url is missing or is not the redirect URL this login started with",
            )
        self.clients.redirect(auth.client_id, auth.redirect_url)  # still registered
        return (yield from self.grant(auth, identity, headers))

    def grant(self, auth: Authorization, identity: Identity, headers: Headers) -> Flow[WebResponse]:
        """A one-time code for `auth`, and the browser sent back to the site with it."""
        code = yield from self.tokens.issue_code(
            auth.client_id, auth.redirect_url, auth.state, identity
        )
        location = with_query(auth.redirect_url, {"code": code, "state": auth.state})
        return WebResponse(status=302, headers=(("location", location), NO_STORE, *headers))

    def token(self, req: WebRequest) -> HubDecision:
        try:
            client = self.clients.basic(req.headers.get("authorization", ""))
            media = req.headers.get("content-type", "text/plain").split(";")[0].strip().lower()
            if media not in ("text/plain", "application/x-www-form-urlencoded", ""):
                raise GrantError(
                    "invalid_request", "the body must be text/plain or form-encoded: code=…&state=…"
                )
            try:
                text = req.body.decode("utf-8")
            except UnicodeDecodeError:
                raise GrantError("invalid_request", "the body is not UTF-8") from None
            params = dict(parse_qsl(text.strip(), keep_blank_values=True))
            if params.get("client_id", client.client_id) != client.client_id:
                raise GrantError("invalid_client", "client_id does not match the credentials", 401)
            grant_type = params.get("grant_type") or "authorization_code"
            if grant_type == "authorization_code":
                code = params.get("code")
                if not code:
                    raise GrantError("invalid_request", "code is required")
                flow = self.tokens.redeem_code(
                    code,
                    client.client_id,
                    state=params.get("state"),
                    redirect_url=params.get("redirect_url") or params.get("redirect_uri"),
                )
            elif grant_type == "refresh_token":
                refresh = params.get("refresh_token")
                if not refresh:
                    raise GrantError("invalid_request", "refresh_token is required")
                flow = self.tokens.refresh(refresh, client.client_id)
            else:
                raise GrantError("unsupported_grant_type", f"grant_type {grant_type[:40]!r}")
        except GrantError as exc:
            return Respond(grant_error(exc))
        return Exchange(self._token_reply(flow))

    def _token_reply(self, flow: Flow[IssuedTokens]) -> Flow[WebResponse]:
        try:
            tokens = yield from flow
        except GrantError as exc:
            return grant_error(exc)
        except LoginError as exc:
            return _unavailable(exc)
        body = {
            "access_token": tokens.access_token,
            "expiry_in": tokens.expires_in,
            "refresh_token": tokens.refresh_token,
            "token_type": "Bearer",
        }
        return json_response(200, body, (("pragma", "no-cache"),))

    def userinfo(self, req: WebRequest) -> HubDecision:
        header = req.headers.get("authorization", "").strip()
        scheme, _, rest = header.partition(" ")
        token = rest.strip() if scheme.lower() == "bearer" else header
        if not token:
            return Respond(_invalid_token("an access token is required"))
        return Exchange(self._userinfo(token))

    def _userinfo(self, token: str) -> Flow[WebResponse]:
        try:
            found = yield from self.tokens.identity(token)
        except LoginError as exc:
            return _unavailable(exc)
        if found is None:
            return _invalid_token("the access token is unknown, expired or revoked")
        return json_response(200, userinfo_body(found[1]))


def _invalid_token(description: str) -> WebResponse:
    challenge = f'Bearer error="invalid_token", error_description="{description}"'
    return json_response(
        401,
        {"error": "invalid_token", "error_description": description},
        (("www-authenticate", challenge),),
    )
