"""The hub's decisions, sans-I/O: what `core.flow.Core` is for the middleware.

`HubCore.decide(request)` answers `Respond(response)` or `Exchange(flow)`
(`core.outcome`); the ASGI glue (`hub.app`) only translates. Route table
(under `DINGMW_PATH_PREFIX`, `/dingtalk` by default):

    GET  /authorize   seed 002 (?redirect_url=&client_id=&state=) or OAuth 2.0 / OpenID
                      Connect (?redirect_uri=&response_type=code&scope=&nonce=&code_challenge=)
    POST /token       authorization_code or refresh_token; client_secret_basic, _post, none
    GET  /userinfo    Authorization: [Bearer] <access_token>
    GET  /jwks        the public signing keys (OpenID Connect)
    GET|POST /logout  ends the hub session, revokes its tokens (RP-initiated logout)
    GET  /login, /callback, /me, /auth, /healthz, /readyz   the middleware's `Core`
    GET  /.well-known/openid-configuration (at the root)  discovery
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
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from .. import metrics
from ..config import Settings
from ..core.effects import Flow
from ..core.flow import Core, Renderer
from ..core.http import Headers, WebRequest, WebResponse, iri_to_uri
from ..core.outcome import Exchange, Forward, Respond
from ..core.redirects import external_base, is_https, safe_next, same_origin
from ..core.responses import NO_STORE, json_response, redirect_to_next
from ..core.revocation import hub_audience, revoke_session
from ..core.routes import own_route
from ..core.session import Session, SessionCache
from ..core.state import PendingLogin
from ..errors import BadRequestError, LoginError
from ..identity import Identity
from ..rendering import render
from .authorization import Authorization, AuthorizationError, parse
from .backchannel import BackChannel
from .claims import claims
from .cors import ANY, CLIENTS, CrossOrigin
from .errors import GrantError, grant_error, oauth_error
from .keys import Signer, load_keys
from .oidc import DISCOVERY_PATHS, OpenIDProvider
from .registry import Registry
from .settings import HubClient, HubSettings
from .tokens import HubTokens, IssuedTokens

log = logging.getLogger("dingmw")

MAX_BODY = 16 * 1024
HubDecision = Respond | Exchange

GET = frozenset({"GET"})
READ = frozenset({"GET", "HEAD"})
POST = frozenset({"POST"})
FORM = "application/x-www-form-urlencoded"


@dataclasses.dataclass(frozen=True, slots=True)
class HubRoute:
    handler: Callable[[WebRequest], HubDecision]
    methods: frozenset[str]
    api: bool = False  # for programs: errors are OAuth JSON, never pages
    cors: str = ""  # who may read it cross-origin: cors.ANY, cors.CLIENTS, or nobody ("")


def with_headers(decision: HubDecision, headers: Headers) -> HubDecision:
    """`decision` with `headers` added to its response (when its flow ends, for an exchange)."""
    if isinstance(decision, Respond):
        response = decision.response
        return Respond(dataclasses.replace(response, headers=(*response.headers, *headers)))
    return Exchange(_added(decision.flow, headers))


def _added(flow: Flow[WebResponse | Forward], headers: Headers) -> Flow[WebResponse | Forward]:
    response = yield from flow
    if isinstance(response, Forward):  # pragma: no cover - the hub's routes never forward
        return response
    return dataclasses.replace(response, headers=(*response.headers, *headers))


def _unique(pairs: Iterable[tuple[str, str]]) -> tuple[str | None, dict[str, str]]:
    """The parameters as a dict, and the first name given twice (None: none was)."""
    params: dict[str, str] = {}
    for key, value in pairs:
        if key in params:
            return key, params
        params[key] = value
    return None, params


def with_query(url: str, params: Mapping[str, str]) -> str:
    joiner = "&" if urlsplit(url).query else "?"
    return iri_to_uri(f"{url}{joiner}{urlencode(params)}")


def userinfo_body(identity: Identity) -> dict[str, Any]:
    """The seed's userinfo: `username` and `email`, plus every identity field."""
    return {"username": identity.remote_user, **identity.to_dict()}


def _unavailable(exc: LoginError) -> WebResponse:
    """The store (or something else the hub needs) failed: say so, accept nothing."""
    return json_response(
        exc.status, {"error": "temporarily_unavailable", "error_description": exc.reason}
    )


def _bearer_error(status: int, error: str, description: str) -> WebResponse:
    challenge = f'Bearer error="{error}", error_description="{description}"'
    return json_response(
        status,
        {"error": error, "error_description": description},
        (("www-authenticate", challenge),),
    )


class HubCore:
    """Every decision of one hub instance; pure apart from the clock."""

    def __init__(
        self,
        settings: Settings,
        hub: HubSettings,
        *,
        clock: Callable[[], float] = time.time,
        render: Renderer = render,
        cache: SessionCache,
    ) -> None:
        self.settings = settings
        self.hub = hub
        self.clock = clock
        self.render = render
        self.clients = Registry(hub.clients)
        self.tokens = HubTokens(
            code_ttl=hub.code_ttl, token_ttl=hub.token_ttl, refresh_ttl=hub.refresh_ttl
        )
        keys = load_keys(hub.oidc_key_files)
        self.oidc = (
            OpenIDProvider(Signer(keys), token_ttl=hub.token_ttl, clock=clock) if keys else None
        )
        self.cross_origin = CrossOrigin(hub.clients)
        self.backchannel = BackChannel(self.clients, self.oidc, settings, hub)
        self.core = Core(
            settings,
            render=render,
            clock=clock,
            finish=self.finish,
            refused=self.refused,
            login_page="dingtalk",
            cache=cache,
        )
        prefix = settings.path_prefix
        self.routes: dict[str, HubRoute] = {
            # GET and POST (OpenID Connect Core §3.1.2.1); a HEAD must not mint a code.
            f"{prefix}/authorize": HubRoute(self.authorize, GET | POST),
            f"{prefix}/token": HubRoute(self.token, POST, api=True, cors=CLIENTS),
            f"{prefix}/userinfo": HubRoute(self.userinfo, READ | POST, api=True, cors=CLIENTS),
            f"{prefix}/jwks": HubRoute(self.jwks, READ, api=True, cors=ANY),
            f"{prefix}/logout": HubRoute(self.logout, GET | POST),
            "/healthz": HubRoute(self.health, READ, api=True),
            **{
                path: HubRoute(self.discovery, READ, api=True, cors=ANY) for path in DISCOVERY_PATHS
            },
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
        if route.cors and req.method == "OPTIONS" and "origin" in req.headers:
            return Respond(self.cross_origin.preflight(req, route.cors, route.methods))
        if req.method not in route.methods:
            return Respond(self.method_not_allowed(req, route))
        if len(req.body) > MAX_BODY:
            return Respond(oauth_error(413, "invalid_request", "body too large"))
        try:
            decision = route.handler(req)
        except LoginError as exc:
            return Respond(self.core.error(req, exc))
        cors = self.cross_origin.headers(req, route.cors) if route.cors else ()
        return with_headers(decision, cors) if cors else decision

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

    # Shared pieces ----------------------------------------------------------

    def issuer(self, req: WebRequest) -> str:
        return external_base(req, self.settings)

    def session(self, req: WebRequest) -> Session | None:
        """The hub session of the request (its `sid` names it in tokens), or None."""
        found = self.core.sessions.lookup(req.cookie_header)
        return found[1].session if found is not None else None

    def _form(self, req: WebRequest) -> dict[str, str]:
        """A POST body of `name=value&…`: a form, or the seed's `text/plain` string.

        The seed's body is "a string" (`code=xxx&state=xxx`), sent as is: a `+` in it is a
        `+` (a standard Base64 state has them), not a space as in a form; `%XX` escapes are
        decoded in both."""
        media = req.headers.get("content-type", "text/plain").split(";")[0].strip().lower()
        if media not in ("text/plain", FORM, ""):
            raise GrantError(
                "invalid_request", "the body must be text/plain or form-encoded: code=...&state=..."
            )
        try:
            text = req.body.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise GrantError("invalid_request", "the body is not UTF-8") from None
        if media == FORM:
            pairs = parse_qsl(text, keep_blank_values=True)
        else:
            parts = (part.partition("=") for part in text.split("&") if part)
            pairs = [(unquote(key), unquote(value)) for key, _, value in parts]
        repeated, params = _unique(pairs)
        if repeated is not None:  # RFC 6749 §3.2: a parameter must not repeat
            raise GrantError("invalid_request", f"{repeated[:40]} is repeated")
        return params

    # Routes ---------------------------------------------------------------

    def health(self, req: WebRequest) -> HubDecision:
        return Respond(WebResponse(status=200, headers=(NO_STORE,), body=b"ok\n"))

    def discovery(self, req: WebRequest) -> HubDecision:
        if self.oidc is None:
            return Respond(
                oauth_error(404, "not_found", "OpenID Connect is off: set DINGMW_HUB_OIDC_KEY_FILE")
            )
        body = self.oidc.discovery(self.issuer(req), self.settings.path_prefix)
        return Respond(json_response(200, body))

    def jwks(self, req: WebRequest) -> HubDecision:
        if self.oidc is None:
            return Respond(
                oauth_error(404, "not_found", "OpenID Connect is off: set DINGMW_HUB_OIDC_KEY_FILE")
            )
        return Respond(json_response(200, self.oidc.signer.jwks()))

    def _authorize_params(self, req: WebRequest) -> dict[str, str]:
        """The request's parameters: its query (GET) or its form (POST), none repeated
        (RFC 6749 §3.1: the first and the second `redirect_uri` could each be believed)."""
        if req.method == "POST":
            media = req.headers.get("content-type", "").split(";")[0].strip().lower()
            if media != FORM:
                raise BadRequestError("bad_request", f"a POST to authorize must be {FORM}")
            try:
                text = req.body.decode("utf-8")
            except UnicodeDecodeError:
                raise BadRequestError("bad_request", "the body is not UTF-8") from None
        else:
            text = req.query_string
        repeated, params = _unique(parse_qsl(text, keep_blank_values=True))
        if repeated is not None:
            raise BadRequestError("bad_request", f"the parameter {repeated[:40]!r} is repeated")
        return params

    def authorize(self, req: WebRequest) -> HubDecision:
        try:
            auth = parse(self._authorize_params(req), self.clients, oidc=self.oidc is not None)
        except AuthorizationError as exc:
            return Respond(self._error_redirect(req, exc))
        return self.core.with_session(req, lambda identity: self._authorized(req, auth, identity))

    def _authorized(
        self, req: WebRequest, auth: Authorization, identity: Identity | None
    ) -> HubDecision:
        if identity is None or auth.fresh:
            if auth.silent:
                refused = AuthorizationError(
                    "login_required", "no hub session", auth.redirect_url, auth.state or None
                )
                return Respond(self._error_redirect(req, refused))
            return Respond(self.start_login(req, auth))
        session = self.session(req)
        sid = session.sid if session is not None else ""
        grant = self.grant(req, auth, identity, sid=sid, auth_time=None)
        return Exchange(self.core.guarded(req, grant))

    def _error_redirect(self, req: WebRequest, exc: AuthorizationError) -> WebResponse:
        params = {"error": exc.error, "error_description": exc.description}
        if exc.state is not None:
            params["state"] = exc.state
        params["iss"] = self.issuer(req)  # RFC 9207
        location = with_query(exc.redirect_url, params)
        return WebResponse(status=302, headers=(("location", location), NO_STORE))

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
        now = int(self.clock())
        cookie = _set_cookie_value(headers, self.core.sessions.cookie_name)
        opened = self.core.sessions.open(cookie, now) if cookie else None
        sid = opened[0].sid if opened is not None else ""
        return (yield from self.grant(req, auth, identity, sid=sid, auth_time=now, headers=headers))

    def refused(
        self, req: WebRequest, pending: PendingLogin, exc: LoginError, headers: Headers
    ) -> WebResponse | None:
        """A standard-dialect login refused at DingTalk or by the hub (the person declined,
        the allow-lists, DingTalk or the store failing) goes back to the client's redirect URI
        with its error (RFC 6749 §4.1.2.1); the seed's dialect has no error parameters, so
        its sites, and a login at the hub itself, get the hub's page."""
        if pending.extra is None:
            return None
        try:
            auth = Authorization.load(pending.extra)
            if not auth.standard:
                return None
            self.clients.redirect(auth.client_id, auth.redirect_url)  # still registered
        except LoginError:
            return None
        if exc.reason == "dingtalk_denied":
            error, description = "access_denied", "the person declined at DingTalk"
        elif exc.status == 403:
            error, description = "access_denied", "the person is not allowed at this hub"
        elif exc.status >= 500:
            error, description = "temporarily_unavailable", "DingTalk or the hub's store failed"
        else:
            error, description = "server_error", "the login at DingTalk did not complete"
        log.info("dingmw hub: login for %s refused: %s", auth.client_id, exc.reason)
        back = AuthorizationError(error, description, auth.redirect_url, auth.state or None)
        answer = self._error_redirect(req, back)
        return dataclasses.replace(answer, headers=(*answer.headers, *headers))

    def grant(
        self,
        req: WebRequest,
        auth: Authorization,
        identity: Identity,
        *,
        sid: str,
        auth_time: int | None,
        headers: Headers = (),
    ) -> Flow[WebResponse]:
        """A one-time code for `auth`, and the browser sent back to the site with it."""
        grant = self.tokens.new_grant(
            auth.client_id, identity, sid=sid, scope=auth.scope, auth_time=auth_time
        )
        code = yield from self.tokens.issue_code(
            grant,
            redirect_url=auth.redirect_url,
            state=auth.state,
            nonce=auth.nonce,
            code_challenge=auth.code_challenge,
        )
        yield from self.backchannel.remember(auth.client_id, sid)
        if auth.standard:
            params = {"code": code, **({"state": auth.state} if auth.state else {})}
            params["iss"] = self.issuer(req)  # RFC 9207
        else:
            params = {"code": code, "state": auth.state}
        location = with_query(auth.redirect_url, params)
        return WebResponse(status=302, headers=(("location", location), NO_STORE, *headers))

    def token(self, req: WebRequest) -> HubDecision:
        grant_type = ""
        try:
            params = self._form(req)
            grant_type = params.get("grant_type") or "authorization_code"
            client = self.clients.authenticate(req.headers.get("authorization", ""), params)
            if grant_type == "authorization_code":
                code = params.get("code")
                if not code:
                    raise GrantError("invalid_request", "code is required")
                flow = self.tokens.redeem_code(
                    code,
                    client.client_id,
                    state=params.get("state"),
                    redirect_url=params.get("redirect_url") or params.get("redirect_uri"),
                    code_verifier=params.get("code_verifier"),
                    public=client.public,
                )
            elif grant_type == "refresh_token":
                refresh = params.get("refresh_token")
                if not refresh:
                    raise GrantError("invalid_request", "refresh_token is required")
                flow = self.tokens.refresh(refresh, client.client_id, scope=params.get("scope"))
            else:
                raise GrantError("unsupported_grant_type", f"grant_type {grant_type[:40]!r}")
        except GrantError as exc:
            metrics.hub_grant(grant_type, exc.error)
            return Respond(grant_error(exc))
        return Exchange(self._token_reply(req, client, flow, grant_type))

    def _token_reply(
        self, req: WebRequest, client: HubClient, flow: Flow[IssuedTokens], grant_type: str
    ) -> Flow[WebResponse]:
        try:
            tokens = yield from flow
        except GrantError as exc:
            metrics.hub_grant(grant_type, exc.error)
            return grant_error(exc)
        except LoginError as exc:
            metrics.hub_grant(grant_type, exc.reason)
            return _unavailable(exc)
        metrics.hub_grant(grant_type, "issued")
        grant = tokens.grant
        body: dict[str, Any]
        if grant.scope is None:  # the seed's answer, byte for byte
            body = {
                "access_token": tokens.access_token,
                "expiry_in": tokens.expires_in,
                "refresh_token": tokens.refresh_token,
                "token_type": "Bearer",
            }
        else:
            body = {
                "access_token": tokens.access_token,
                "token_type": "Bearer",
                "expires_in": tokens.expires_in,
                "refresh_token": tokens.refresh_token,
                "scope": grant.scope,
            }
            if "openid" in grant.scopes and self.oidc is not None:
                body["id_token"] = self.oidc.id_token(self.issuer(req), tokens, client)
        return json_response(200, body, (("pragma", "no-cache"),))

    def userinfo(self, req: WebRequest) -> HubDecision:
        header = req.headers.get("authorization", "").strip()
        scheme, _, rest = header.partition(" ")
        token = rest.strip() if scheme.lower() == "bearer" else header
        if not token:
            return Respond(_bearer_error(401, "invalid_token", "an access token is required"))
        return Exchange(self._userinfo(token))

    def _userinfo(self, token: str) -> Flow[WebResponse]:
        try:
            grant = yield from self.tokens.grant_of(token)
        except LoginError as exc:
            return _unavailable(exc)
        if grant is None:
            return _bearer_error(
                401, "invalid_token", "the access token is unknown, expired or revoked"
            )
        if grant.scope is None:
            return json_response(200, userinfo_body(grant.identity))
        if "openid" not in grant.scopes:
            return _bearer_error(403, "insufficient_scope", "the token was not granted openid")
        return json_response(200, claims(grant.identity, grant.scopes))

    # Logout (RP-initiated, OpenID Connect RP-Initiated Logout 1.0) --------------

    def logout(self, req: WebRequest) -> HubDecision:
        params = req.query()
        if req.method == "POST":
            try:
                params = self._form(req)
            except GrantError as exc:
                raise BadRequestError("bad_request", exc.description) from None
        issuer = self.issuer(req)
        hint = None
        if params.get("id_token_hint"):
            hint = self.oidc.hint(params["id_token_hint"], issuer) if self.oidc else None
            if hint is None:
                raise BadRequestError("bad_request", "id_token_hint was not issued by this hub")
        client_id = params.get("client_id") or None
        if hint is not None:
            if client_id is not None and client_id != hint["aud"]:
                raise BadRequestError("bad_request", "client_id is not the id_token_hint's")
            client_id = str(hint["aud"])
        target = safe_next(params.get("next"))
        post_logout = params.get("post_logout_redirect_uri")
        if post_logout:
            client = self.clients.get(client_id)
            if client is None or post_logout not in client.post_logout_redirect_urls:
                raise BadRequestError(
                    "redirect_not_registered",
                    "post_logout_redirect_uri is not registered for this client",
                )
            state = params.get("state")
            target = with_query(post_logout, {"state": state}) if state else post_logout
        session = self.session(req)
        confirmed = (
            session is None
            or same_origin(req, self.settings, navigation=req.method == "GET")
            or (hint is not None and hint.get("sid") == session.sid)
        )
        if not confirmed:
            return Respond(self._confirm_logout(req, params))
        return Exchange(self._end_session(req, session, target))

    def _confirm_logout(self, req: WebRequest, params: Mapping[str, str]) -> WebResponse:
        """A page whose button logs out by a same-origin POST (a link from elsewhere cannot)."""
        kept = ("client_id", "post_logout_redirect_uri", "state", "next", "id_token_hint")
        context = {
            "action": self.core.own_url(req, "logout"),
            "fields": {k: params[k] for k in kept if params.get(k)},
            "done": False,
            "target": None,
        }
        return self.core.page(req, "hub_logout.html", context)

    def _end_session(
        self, req: WebRequest, session: Session | None, target: str | None
    ) -> Flow[WebResponse]:
        """End the hub session: the session itself, every token issued in it, and the sessions
        of the sites that log in through this hub (shared store; back-channel logout tokens)."""
        clear = ("set-cookie", self.core.sessions.clear(secure=is_https(req, self.settings)))
        if session is not None:
            identity = session.identity
            found = self.core.sessions.lookup(req.cookie_header)
            if found is not None:
                self.core.sessions.forget(found[0])
            issuer = self.issuer(req)
            try:
                yield from revoke_session(session.sid, session.expires, self.clock())
                yield from self.tokens.end_session(session.sid)
                yield from self.core.revoke_everywhere(
                    identity.unionid, audiences=(hub_audience(issuer),)
                )
                yield from self.backchannel.notify(issuer, session.sid, identity)
            except LoginError as exc:
                return self.core.error(req, exc, headers=(clear,))
            log.info("dingmw hub: logout unionid=%s", identity.unionid)
        if target and not (req.method == "POST" and target.startswith(("http:", "https:"))):
            return WebResponse(status=302, headers=(("location", target), NO_STORE, clear))
        # After a form on the hub's own page, the browser would refuse a redirect to another
        # site (its `form-action 'self'`): the page links there, and goes there by itself.
        context = {"action": "", "fields": {}, "done": True, "target": target}
        return self.core.page(req, "hub_logout.html", context, headers=(clear,))


def _set_cookie_value(headers: Headers, name: str) -> str | None:
    """The value a `Set-Cookie` among `headers` gives cookie `name`."""
    for header, value in headers:
        if header == "set-cookie" and value.startswith(f"{name}="):
            return value.split(";", 1)[0][len(name) + 1 :] or None
    return None
