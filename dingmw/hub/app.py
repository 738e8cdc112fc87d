"""The hub: one DingTalk login for many internal sites (seed 002, CONTRACT §6).

Routes (under `DINGMW_PATH_PREFIX`, `/dingtalk` by default):

    GET  /authorize?redirect_url=&client_id=&state=   a registered site sends a person here
    GET  /login, /callback, /logout, /me, /auth        the hub's own DingTalk login (the core)
    POST /token       Basic client auth; code=…&state=… or grant_type=refresh_token&refresh_token=…
    GET  /userinfo    Authorization: [Bearer] <access_token> → {username, email, …identity}

A person without a hub session is sent to the hub's login page (the same QR
page as the middleware); after the DingTalk callback the hub mints a one-time
code and sends the browser to the site's redirect URL with the code and the
site's `state`. With a hub session, `/authorize` answers at once (single
sign-on across sites).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hmac
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx

from ..asgi import (
    AsyncEffects,
    Receive,
    Scope,
    Send,
    request_from_scope,
    send_response,
)
from ..config import HubClient, Settings
from ..core.effects import Flow
from ..core.flow import Core
from ..core.http import INTERNAL_ERROR, Headers, WebRequest, WebResponse, iri_to_uri
from ..core.outcome import Decision, Exchange, Forward, Respond
from ..core.responses import NO_STORE, json_response, redirect_to_next
from ..errors import BadRequestError, LoginError
from ..identity import Identity
from ..rendering import render
from ..stores import AsyncStore
from .tokens import GrantError, HubTokens, IssuedTokens

log = logging.getLogger("dingmw")

MAX_BODY = 16 * 1024
MAX_STATE = 512
_DUMMY_SECRET = "dingmw-hub-dummy-secret-for-constant-time"  # noqa: S105  # never matches


def _oauth_error(exc: GrantError) -> WebResponse:
    headers: Headers = (("pragma", "no-cache"),)
    if exc.status == 401:
        headers += (("www-authenticate", 'Basic realm="dingmw hub"'),)
    return json_response(
        exc.status, {"error": exc.error, "error_description": exc.description}, headers
    )


def _unavailable(exc: LoginError) -> WebResponse:
    """The store (or something else the hub needs) failed: say so, accept nothing."""
    return json_response(
        exc.status, {"error": "temporarily_unavailable", "error_description": exc.reason}
    )


def _with_query(url: str, params: dict[str, str]) -> str:
    joiner = "&" if urlsplit(url).query else "?"
    return iri_to_uri(f"{url}{joiner}{urlencode(params)}")


def userinfo_body(identity: Identity) -> dict[str, Any]:
    """The hub's userinfo: the seed's `username` and `email`, plus every identity field."""
    return {"username": identity.remote_user, **identity.to_dict()}


class Hub:
    """The hub as an ASGI app; build it with `dingmw.hub.create_app(settings)`."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        client: httpx.AsyncClient | None = None,
        store: AsyncStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not settings.hub_clients:
            from ..errors import ConfigError

            raise ConfigError("DINGMW_HUB_CLIENTS must register at least one site for the hub")
        self.settings = settings
        self.clients = {c.client_id: c for c in settings.hub_clients}
        self.tokens = HubTokens(settings)
        self.core = Core(settings, render=render, clock=clock, finish=self.finish)
        self.effects = AsyncEffects(settings, transport=transport, client=client, store=store)
        prefix = settings.path_prefix
        self.routes: dict[str, Callable[[WebRequest], Decision]] = {
            f"{prefix}/authorize": self.authorize,
            f"{prefix}/token": self.token,
            f"{prefix}/userinfo": self.userinfo,
            "/healthz": self.health,
        }

    # ASGI ----------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, self.effects.closing_on_shutdown(send))
            return
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1008})
            return
        try:
            req = self.core.behind_proxy(request_from_scope(scope))
            handler = self.routes.get(req.path)
            if handler is not None and req.method == "POST":
                body = await _read_body(receive)
                if body is None:
                    too_large = {"error": "invalid_request", "error_description": "body too large"}
                    decision: Decision = Respond(json_response(413, too_large))
                else:
                    decision = handler(dataclasses.replace(req, body=body))
            elif handler is not None:
                decision = handler(req)
            else:
                decision = self.core.decide(req)
            if isinstance(decision, Forward):  # the hub has no app behind it
                decision = Respond(self.core.error(req, BadRequestError("not_found"), status=404))
        except Exception:
            log.exception("dingmw hub: internal error while deciding a request")
            decision = Respond(INTERNAL_ERROR)
        if isinstance(decision, Exchange):
            response = await self.effects.run(decision.flow)
        else:
            assert isinstance(decision, Respond)  # noqa: S101  # Forward was answered above
            response = decision.response
        await send_response(response, send, head=scope.get("method") == "HEAD")

    # Routes --------------------------------------------------------------------

    def health(self, req: WebRequest) -> Decision:
        return Respond(WebResponse(status=200, headers=(NO_STORE,), body=b"ok\n"))

    def _registered(self, client_id: str | None, redirect_url: str | None) -> HubClient:
        client = self.clients.get(client_id or "")
        if client is None:
            raise BadRequestError("unknown_client", "client_id is not registered at this hub")
        # Exact match: no prefix, wildcard or normalisation surprises.
        if redirect_url is None or redirect_url not in client.redirect_urls:
            raise BadRequestError(
                "redirect_not_registered", "redirect_url is not registered for this client"
            )
        return client

    def authorize(self, req: WebRequest) -> Decision:
        if req.method != "GET":  # a HEAD must not mint a code
            refused = BadRequestError("method_not_allowed")
            return Respond(self.core.error(req, refused, status=405, headers=(("allow", "GET"),)))
        query = req.query()
        try:
            client = self._registered(query.get("client_id"), query.get("redirect_url"))
            state = query.get("state", "")
            if len(state) > MAX_STATE:
                raise BadRequestError("bad_request", "state is too long")
        except LoginError as exc:
            return Respond(self.core.error(req, exc))
        identity = self.core.identity(req)
        if identity is None:
            return Respond(
                WebResponse(status=302, headers=(("location", self.core.login_url(req)), NO_STORE))
            )
        redirect_url = query["redirect_url"]
        return Exchange(
            self.core.guarded(req, self._forward(client, redirect_url, state, identity, ()))
        )

    def _forward(
        self,
        client: HubClient,
        redirect_url: str,
        state: str,
        identity: Identity,
        headers: Headers,
    ) -> Flow[WebResponse]:
        code = yield from self.tokens.issue_code(client.client_id, redirect_url, state, identity)
        location = _with_query(redirect_url, {"code": code, "state": state})
        return WebResponse(status=302, headers=(("location", location), NO_STORE, *headers))

    def finish(
        self, req: WebRequest, identity: Identity, next_path: str, headers: Headers
    ) -> Flow[WebResponse]:
        """After the hub's own DingTalk login: straight back to the site that asked."""
        authorize = f"{req.root_path}{self.settings.path_prefix}/authorize"
        path, _, query_string = next_path.partition("?")
        if path != authorize:
            return (yield from redirect_to_next(req, identity, next_path, headers))
        query = dict(parse_qsl(query_string, keep_blank_values=True))
        client = self._registered(query.get("client_id"), query.get("redirect_url"))
        redirect_url = query["redirect_url"]
        forward_url = req.query().get("forward_url")
        if forward_url is not None and forward_url != redirect_url:
            raise BadRequestError("redirect_not_registered", "forward_url does not match")
        state = query.get("state", "")
        return (yield from self._forward(client, redirect_url, state, identity, headers))

    def _client(self, req: WebRequest) -> HubClient:
        """The client authenticated by HTTP Basic; secrets compared in constant time."""
        scheme, _, encoded = req.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic" or not encoded:
            raise GrantError("invalid_client", "HTTP Basic client authentication is required", 401)
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise GrantError(
                "invalid_client", "the Authorization header is malformed", 401
            ) from None
        client_id, sep, secret = decoded.partition(":")
        client = self.clients.get(client_id)
        expected = client.client_secret if client is not None else _DUMMY_SECRET
        matches = hmac.compare_digest(secret.encode("utf-8"), expected.encode("utf-8"))
        if client is None or not sep or not matches:
            raise GrantError("invalid_client", "unknown client or wrong secret", 401)
        return client

    def token(self, req: WebRequest) -> Decision:
        if req.method != "POST":
            return Respond(
                json_response(
                    405,
                    {"error": "invalid_request", "error_description": "use POST"},
                    (("allow", "POST"),),
                )
            )
        try:
            client = self._client(req)
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
            return Respond(_oauth_error(exc))
        return Exchange(self._token_reply(flow))

    def _token_reply(self, flow: Flow[IssuedTokens]) -> Flow[WebResponse]:
        try:
            tokens = yield from flow
        except GrantError as exc:
            return _oauth_error(exc)
        except LoginError as exc:
            return _unavailable(exc)
        body = {
            "access_token": tokens.access_token,
            "expiry_in": tokens.expires_in,
            "refresh_token": tokens.refresh_token,
            "token_type": "Bearer",
        }
        return json_response(200, body, (("pragma", "no-cache"),))

    def userinfo(self, req: WebRequest) -> Decision:
        if req.method not in ("GET", "HEAD", "POST"):
            allow = (("allow", "GET, HEAD, POST"),)
            return Respond(json_response(405, {"error": "invalid_request"}, allow))
        header = req.headers.get("authorization", "").strip()
        scheme, _, rest = header.partition(" ")
        token = rest.strip() if scheme.lower() == "bearer" else header
        if not token:
            return Respond(self._invalid_token("an access token is required"))
        return Exchange(self._userinfo(token))

    def _invalid_token(self, description: str) -> WebResponse:
        challenge = f'Bearer error="invalid_token", error_description="{description}"'
        return json_response(
            401,
            {"error": "invalid_token", "error_description": description},
            (("www-authenticate", challenge),),
        )

    def _userinfo(self, token: str) -> Flow[WebResponse]:
        try:
            found = yield from self.tokens.identity(token)
        except LoginError as exc:
            return _unavailable(exc)
        if found is None:
            return self._invalid_token("the access token is unknown, expired or revoked")
        return json_response(200, userinfo_body(found[1]))


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
