"""FakeDingTalk: one object serving DingTalk's three hosts by path, through an httpx
transport (sync and async clients) and an ASGI app (Starlette), plus helpers that act like a
person in front of the DingTalk login pages.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import quote, urlsplit

import httpx

from . import api, oapi, pages
from .directory import FakeApp, FakeUser, default_apps, default_users
from .faults import Fault, is_api_path
from .state import World
from .wire import Req, Resp, html

if TYPE_CHECKING:  # Starlette is needed only for the server face (`asgi_app`)
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

__all__ = ["FakeDingTalk", "RecordedRequest", "ScanError", "serve"]

_ASGI_TIMEOUT_SLEEP = 30.0


class ScanError(RuntimeError):
    """A simulated browser step did not get what a real user would (the page refused)."""


class RecordedRequest(NamedTuple):
    method: str
    url: str
    headers: dict[str, str]
    body: bytes


class FakeDingTalk:
    """An in-memory DingTalk. See the package docstring for the public surface.

    Thread-safe: directory, ledger, counters and faults are only touched under one RLock;
    injected delays sleep outside it.
    """

    STALE_TIMESTAMP_ERRCODE = oapi.STALE_TIMESTAMP_ERRCODE
    BAD_SIGNATURE_ERRCODE = oapi.BAD_SIGNATURE_ERRCODE
    SIGNATURE_MAX_SKEW = oapi.SIGNATURE_MAX_SKEW

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self._world = World(clock)
        self.calls: Counter[str] = Counter()
        self.requests: list[RecordedRequest] = []
        self._faults: dict[str, list[Fault]] = {}
        for app in default_apps():
            self.add_app(app)
        for user in default_users():
            self.add_user(user)

    # --- directory ------------------------------------------------------------------------

    def add_app(self, app: FakeApp) -> FakeApp:
        with self._world.lock:
            self._world.apps[app.app_key] = app
        return app

    def add_user(self, user: FakeUser) -> FakeUser:
        with self._world.lock:
            self._world.users[user.unionid] = user
            if self._world.client_user is None:
                self._world.client_user = user.unionid
        return user

    @property
    def apps(self) -> dict[str, FakeApp]:
        return dict(self._world.apps)

    @property
    def users(self) -> dict[str, FakeUser]:
        return dict(self._world.users)

    @property
    def client_user(self) -> str | None:
        """unionid of the person "logged into the DingTalk client" (JSAPI stand-in)."""
        return self._world.client_user

    @client_user.setter
    def client_user(self, unionid: str | None) -> None:
        self._world.client_user = unionid

    @property
    def oauth2_also_code(self) -> bool:
        """Also put ``code=`` next to ``authCode=`` on the OAuth2 callback (default off)."""
        return self._world.oauth2_also_code

    @oauth2_also_code.setter
    def oauth2_also_code(self, value: bool) -> None:
        self._world.oauth2_also_code = value

    # --- clock and faults -----------------------------------------------------------------

    def now(self) -> float:
        return self._world.now()

    def advance(self, seconds: float) -> None:
        self._world.advance(seconds)

    def inject(
        self,
        path: str,
        *,
        errcode: int | None = None,
        sub_code: str | None = None,
        status: int | None = None,
        code: str | None = None,
        message: str | None = None,
        body: bytes | str | None = None,
        delay: float = 0.0,
        timeout: bool = False,
        ip_ban: bool = False,
        times: int = 1,
    ) -> None:
        if times < 1:
            raise ValueError("times must be >= 1")
        raw = body.encode("utf-8") if isinstance(body, str) else body
        fault = Fault(
            errcode=errcode,
            sub_code=sub_code,
            status=status,
            code=code,
            message=message,
            body=raw,
            delay=delay,
            timeout=timeout,
            ip_ban=ip_ban,
            remaining=times,
        )
        with self._world.lock:
            self._faults.setdefault(path, []).append(fault)

    def _admit(self, req: Req) -> Fault | None:
        """Record the request and pick the fault (if any) that applies to it."""
        with self._world.lock:
            self.calls[req.path] += 1
            self.requests.append(RecordedRequest(req.method, req.url, dict(req.headers), req.body))
            queue = self._faults.get(req.path)
            if not queue:
                return None
            fault = queue[0]
            fault.remaining -= 1
            if fault.remaining <= 0:
                queue.pop(0)
            return fault

    # --- routing --------------------------------------------------------------------------

    def dispatch(self, req: Req) -> Resp:
        """Answer one request (no fault injection, no recording)."""
        method = "GET" if req.method == "HEAD" else req.method
        with self._world.lock:
            resp = self._route(req, method)
        if req.method == "HEAD":
            resp.body = b""
        return resp

    def _route(self, req: Req, method: str) -> Resp:
        world, path = self._world, req.path
        if path in oapi.ROUTES:
            expected, handler = oapi.ROUTES[path]
            return handler(world, req) if method == expected else oapi.wrong_method(expected)
        if path in api.ROUTES:
            expected, api_handler = api.ROUTES[path]
            return api_handler(world, req) if method == expected else api.not_found()
        if path.startswith(api.USERS_PREFIX):
            union_id = path[len(api.USERS_PREFIX) :]
            if method != "GET" or not union_id or "/" in union_id:
                return api.not_found()
            return api.contact_user(world, req, union_id)
        if path in pages.ROUTES:
            methods, page_handler = pages.ROUTES[path]
            if method not in methods:
                return html("<h1>405 Method Not Allowed</h1>", status=405)
            return page_handler(world, req)
        if is_api_path(path):
            return api.not_found()
        if path.startswith("/topapi/"):
            return oapi.unknown_topapi()
        return pages.not_found(path)

    # --- faces ----------------------------------------------------------------------------

    def transport(self) -> httpx.MockTransport:
        """An httpx transport for ``httpx.Client`` and ``httpx.AsyncClient`` alike."""
        return _Transport(self)

    @cached_property
    def asgi_app(self) -> Starlette:
        from starlette.applications import Starlette
        from starlette.routing import Route

        methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
        return Starlette(routes=[Route("/{path:path}", self._asgi_endpoint, methods=methods)])

    async def _asgi_endpoint(self, request: Request) -> Response:
        from starlette.responses import Response

        body = await request.body()
        host = request.headers.get("host") or (request.url.netloc or "localhost")
        req = Req(
            method=request.method,
            scheme=request.url.scheme,
            host=host,
            path=request.scope["path"],
            raw_query=request.scope.get("query_string", b"").decode("latin-1"),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
        )
        fault = self._admit(req)
        resp: Resp | None = None
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.timeout:
                await asyncio.sleep(_ASGI_TIMEOUT_SLEEP)
            resp = fault.response(req.path)
        if resp is None:
            resp = self.dispatch(req)
        out = Response(content=resp.body, status_code=resp.status)
        for name, value in resp.headers:
            out.headers.append(name, value)
        return out

    # --- a person in front of a browser ---------------------------------------------------

    def scan(self, authorize_url: str, unionid: str, *, deny: bool = False) -> str:
        """Scan the QR of an authorize URL as ``unionid`` and return DingTalk's redirect."""
        parts = urlsplit(authorize_url)
        with httpx.Client(transport=self.transport(), follow_redirects=False) as browser:
            if parts.path == "/oauth2/auth":
                return self._scan_oauth2(browser, authorize_url, parts.query, unionid, deny)
            if parts.path == "/connect/qrconnect" or (
                parts.path == "/connect/oauth2/sns_authorize" and deny
            ):
                return self._scan_account_page(browser, authorize_url, parts.query, unionid, deny)
            if parts.path == "/connect/oauth2/sns_authorize":
                return self._scan_qr_frame(browser, authorize_url, unionid)
        raise ScanError(f"not a DingTalk authorize URL: {authorize_url}")

    @staticmethod
    def _page(browser: httpx.Client, url: str, unionid: str) -> None:
        page = browser.get(url)
        if page.status_code != 200:
            raise ScanError(f"{url} -> HTTP {page.status_code}: {_text(page)}")
        if f'data-unionid="{unionid}"' not in page.text:
            raise ScanError(f"user {unionid!r} is not offered on {url}")

    @staticmethod
    def _location(resp: httpx.Response) -> str:
        if resp.status_code != 302:
            raise ScanError(f"expected a 302, got HTTP {resp.status_code}: {_text(resp)}")
        return resp.headers["location"]

    def _scan_oauth2(
        self, browser: httpx.Client, url: str, query: str, unionid: str, deny: bool
    ) -> str:
        self._page(browser, url, unionid)
        origin = _origin(url)
        form = {"q": query, **({"deny": "1"} if deny else {"unionid": unionid})}
        resp = browser.post(origin + "/oauth2/fake-confirm", data=form)
        if "iframe=true" not in query.lower():
            return self._location(resp)
        data = resp.json()
        if not data.get("success"):
            raise ScanError(str(data.get("errorMsg")))
        return str(data["redirectUrl"])

    def _scan_account_page(
        self, browser: httpx.Client, url: str, query: str, unionid: str, deny: bool
    ) -> str:
        self._page(browser, url, unionid)
        form = {"q": query, **({"deny": "1"} if deny else {"unionid": unionid})}
        return self._location(browser.post(_origin(url) + "/connect/fake-login", data=form))

    def _scan_qr_frame(self, browser: httpx.Client, url: str, unionid: str) -> str:
        origin = _origin(url)
        frame = origin + "/login/qrcode.htm?goto=" + quote(url, safe="")
        self._page(browser, frame, unionid)
        scanned = browser.post(origin + "/login/fake-scan", data={"goto": url, "unionid": unionid})
        if scanned.status_code != 200:
            raise ScanError(f"scan refused: {_text(scanned)}")
        tmp = scanned.json()["loginTmpCode"]
        return self._location(browser.get(url + "&loginTmpCode=" + tmp))

    def issue_jsapi_code(self, unionid: str | None = None, corp_id: str | None = None) -> str:
        """A ``requestAuthCode`` code (5 min, single use) as the DingTalk client would get."""
        with self._world.lock:
            who = unionid or self._world.client_user
            user = self._world.user(who)
            if user is None:
                raise ValueError(f"unknown user {who!r}")
            corp = corp_id or next(iter(user.corp_ids), None)
            corp = corp or next((a.corp_id for a in self._world.apps.values() if a.corp_id), None)
            if corp is None:
                raise ValueError("no corp to issue the code for")
            return oapi.jsapi_code_for(self._world, user.unionid, corp)


class _Transport(httpx.MockTransport):
    def __init__(self, fake: FakeDingTalk) -> None:
        super().__init__(self._handle_sync)
        self._fake = fake

    def _handle_sync(self, request: httpx.Request) -> httpx.Response:
        req = _from_httpx(request)
        fault = self._fake._admit(req)
        resp: Resp | None = None
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.timeout:
                raise httpx.ReadTimeout("injected timeout (fake DingTalk)", request=request)
            resp = fault.response(req.path)
        return _to_httpx(resp or self._fake.dispatch(req), request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        req = _from_httpx(request)
        fault = self._fake._admit(req)
        resp: Resp | None = None
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.timeout:
                raise httpx.ReadTimeout("injected timeout (fake DingTalk)", request=request)
            resp = fault.response(req.path)
        return _to_httpx(resp or self._fake.dispatch(req), request)


def _from_httpx(request: httpx.Request) -> Req:
    request.read()
    return Req(
        method=request.method,
        scheme=request.url.scheme,
        host=request.url.netloc.decode("ascii"),
        path=request.url.path,
        raw_query=request.url.query.decode("ascii"),
        headers={k.lower(): v for k, v in request.headers.items()},
        body=request.content,
    )


def _to_httpx(resp: Resp, request: httpx.Request) -> httpx.Response:
    return httpx.Response(resp.status, headers=resp.headers, content=resp.body, request=request)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _text(resp: httpx.Response) -> str:
    return re.sub(r"<[^>]+>", " ", resp.text)[:300].strip()


def serve(host: str = "127.0.0.1", port: int = 8765, fake: FakeDingTalk | None = None) -> None:
    """Run a fake DingTalk on ``host:port`` (needs uvicorn) until interrupted."""
    import uvicorn  # optional dependency: imported only when serving

    uvicorn.run((fake or FakeDingTalk()).asgi_app, host=host, port=port)
