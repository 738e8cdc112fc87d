"""`WSGIMiddleware`: the core under any WSGI app (Flask, Django, plain WSGI).

A thin translator: environ → `WebRequest`, the core's decision → the
wrapped app (with `dingtalk.identity` and `REMOTE_USER` in the environ, and
without any client-sent identity header: `dingmw.spoofing`) or a response.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import httpx

from .clients import SyncClients, sync_clients
from .config import Settings
from .core.drive import SyncRunner
from .core.effects import Flow
from .core.flow import Core
from .core.http import INTERNAL_ERROR, WebRequest, WebResponse
from .core.outcome import Exchange, Forward, Respond
from .identity import IDENTITY_KEY
from .rendering import renderer
from .session_cache import VerifiedSessions
from .spoofing import IdentityHeaders
from .stores import Store, open_stores

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
else:
    StartResponse = WSGIApplication = WSGIEnvironment = Any

log = logging.getLogger("dingmw")

_SPECIAL = {"CONTENT_TYPE": "content-type", "CONTENT_LENGTH": "content-length"}


def request_from_environ(environ: WSGIEnvironment) -> WebRequest:
    headers: dict[str, str] = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers[key[5:].replace("_", "-").lower()] = value
        elif key in _SPECIAL and value:
            headers[_SPECIAL[key]] = value
    host = headers.get("host")
    if not host:
        host = f"{environ.get('SERVER_NAME', 'localhost')}:{environ.get('SERVER_PORT', '80')}"
    path = environ.get("PATH_INFO", "") or "/"
    root_path = environ.get("SCRIPT_NAME", "")
    return WebRequest(
        method=environ.get("REQUEST_METHOD", "GET").upper(),
        scheme=environ.get("wsgi.url_scheme", "http"),
        host=host,
        root_path=_unwsgi(root_path),
        path=_unwsgi(path),
        query_string=environ.get("QUERY_STRING", ""),
        headers=headers,
    )


def _unwsgi(text: str) -> str:
    """PEP 3333 strings are bytes decoded as latin-1; paths are UTF-8."""
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


def start(response: WebResponse, start_response: StartResponse) -> list[bytes]:
    headers = [*response.headers, ("content-length", str(len(response.body)))]
    start_response(f"{response.status} {HTTPStatus(response.status).phrase}", headers)
    return [response.body]


class WSGIMiddleware:
    """Put DingTalk login in front of a WSGI app.

    `settings=None` reads `DINGMW_*` from the environment. For tests and
    custom networking pass `transport=` (an `httpx.BaseTransport`, such as
    `dingmw.testing.FakeDingTalk().transport()`) or a ready `client=`.
    """

    def __init__(
        self,
        app: WSGIApplication,
        settings: Settings | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        client: httpx.Client | None = None,
        store: Store | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app = app
        self.settings = settings if settings is not None else Settings.from_env()
        render = renderer(self.settings.templates_dir)
        self.core = Core(self.settings, render=render, clock=clock, cache=VerifiedSessions())
        self.identity_headers = IdentityHeaders(self.settings.strip_headers)
        self.trust_proxy = self.settings.trust_proxy
        self.store = store if store is not None else open_stores(self.settings.store_url)[0]
        self.clients: SyncClients = sync_clients(
            timeout=self.settings.http_timeout, transport=transport, client=client
        )

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        try:
            path = environ.get("PATH_INFO", "") or "/"
            if not path.isascii():
                path = _unwsgi(path)
            cookie = environ.get("HTTP_COOKIE", "")
            prefix = environ.get("HTTP_X_FORWARDED_PREFIX") if self.trust_proxy else None
            if prefix is not None and self.core.prefix_refused(prefix):
                decision = self.core.decide(request_from_environ(environ))  # a 400
            else:
                decision = (
                    self.core.hit(path, cookie)
                    or self.core.missed(path, cookie, lambda: request_from_environ(environ))
                    or self.core.decide(request_from_environ(environ))
                )
        except Exception:
            log.exception("dingmw: internal error while deciding a request")
            decision = Respond(INTERNAL_ERROR)
        if isinstance(decision, Exchange):
            outcome = self.exchange(decision.flow)
            decision = outcome if isinstance(outcome, Forward) else Respond(outcome)
        if isinstance(decision, Forward):
            if self.identity_headers.environ_spoofed(environ):
                self.identity_headers.strip_environ(environ)
            identity = decision.identity
            environ[IDENTITY_KEY] = identity
            if identity is not None:
                environ["REMOTE_USER"] = identity.remote_user
            return self.app(environ, start_response)
        body = start(decision.response, start_response)
        return [b""] if environ.get("REQUEST_METHOD") == "HEAD" else body

    def client(self) -> httpx.Client:
        """The pooled `httpx.Client` of this process (thread-safe), created on first use."""
        return self.clients.get()

    def close(self) -> None:
        """Close the pooled client's connections (a caller's client or transport stays open)."""
        self.clients.close()

    def exchange(self, flow: Flow[WebResponse | Forward]) -> WebResponse | Forward:
        """Run a flow with the pooled `httpx.Client` and the sync store."""
        try:
            return SyncRunner(self.clients, self.store).run(flow)
        except Exception:
            log.exception("dingmw: internal error during a login exchange")
            return INTERNAL_ERROR
