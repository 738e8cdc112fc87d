"""The HTTP clients the drivers send DingTalk (and hub) calls with: pooled and long-lived.

Building an `httpx` client builds an SSL context (~20 ms of CPU) and a new
connection pool, so nothing here is built per request:

* one SSL context per process, shared by every client (`ssl_context`);
* ASGI: pooled `httpx.AsyncClient`s per event loop (their connections belong
  to the loop that opened them; a process may run several loops, a test client
  per thread say), opened on first use and closed by the ASGI lifespan's
  shutdown (`AsyncClients.aclose`);
* WSGI: pooled thread-safe `httpx.Client`s per process (made anew after a
  fork, so a pre-forking server never shares sockets between workers);
* in both, many single-connection clients rather than one big pool (see
  `CONNECTIONS`), and a request that fails because the server closed an idle
  keep-alive connection just as it was reused is sent once more (see
  `_Reuse`).

Without a caller's `transport=` the clients are shared by every middleware
and hub in the process, so they pool connections to DingTalk together. A
caller's `client=` is used as is and never closed; a caller's `transport=`
gets clients of its own and is never closed either.

`send` is the only method a driver calls: a flow that makes no HTTP call
never touches a client.
"""

from __future__ import annotations

import asyncio
import functools
import os
import ssl
import threading
import weakref
from collections.abc import Callable, MutableMapping

import httpx

# Sized for a login storm. httpcore's pool does bookkeeping proportional to its
# connections each time a request starts or ends (for every connection it asks the
# socket whether the server closed it), so one pool of many connections spends more
# CPU on itself than on the calls under a storm (200 logins at once spent most of
# their CPU there). So each loop (ASGI) or process (WSGI) keeps `CONNECTIONS`
# clients of one connection each and hands a request to a free one, the most
# recently used first (its connection is the likeliest to be open); when all are
# busy, the request waits here, never inside httpcore. A quiet site uses one.
CONNECTIONS = 128  # at DingTalk's tens of ms a call: thousands of calls a second
LIMITS = httpx.Limits(max_connections=1, max_keepalive_connections=1, keepalive_expiry=50)
# Errors of a request on a reused keep-alive connection that the server closed as
# the request went out (it had been idle for the server's keep-alive timeout). Such
# a request is sent once more, on a new connection; see `_Reuse`.
_STALE = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


class _NoCookies(httpx.Cookies):
    """A jar that keeps no cookie and reads no answer's `Set-Cookie`.

    The clients serve every person's login, so nothing one answer sets (a load
    balancer's cookie, say) may ride along with the next person's calls. Skipping
    the read altogether also spares each call httpx's cookie handling (it builds
    `urllib` request and response stand-ins and runs `http.cookiejar` over every
    answer's headers: some 10% of a call's CPU).
    """

    def extract_cookies(self, response: httpx.Response) -> None:
        return None

    def set_cookie_header(self, request: httpx.Request) -> None:
        return None


_NO_COOKIES = _NoCookies()


class _Cookieless:
    """A client whose jar is `_NoCookies`."""

    @property
    def cookies(self) -> httpx.Cookies:
        return _NO_COOKIES

    @cookies.setter
    def cookies(self, cookies: object) -> None:
        raise AttributeError("dingmw's pooled clients keep no cookie")


class _AsyncClient(_Cookieless, httpx.AsyncClient):
    pass


class _Client(_Cookieless, httpx.Client):
    pass


@functools.cache
def ssl_context() -> ssl.SSLContext:
    """The one SSL context of the process (certifi's CA bundle, as httpx's default)."""
    return httpx.create_ssl_context()


class _Reuse:
    """Whether a request went out on a connection opened before it (httpcore's trace).

    A server may close an idle keep-alive connection just as a request is written
    to it; the request then fails before any answer (as `_STALE`). Browsers, Go's
    net/http and urllib3 retry such a request on a new connection, and so does
    dingmw, once, and only when the failed attempt really reused a connection:
    DingTalk's calls here read data or redeem a one-time code, so in the rare case
    the first attempt did reach DingTalk, the retry fails as the first attempt did.
    """

    __slots__ = ("connected", "sent")

    def __init__(self) -> None:
        self.connected = self.sent = False

    def saw(self, name: str) -> None:
        if name == "connection.connect_tcp.started":
            self.connected = True
        elif name == "http11.send_request_headers.started":
            self.sent = True

    def traced(self, request: httpx.Request, trace: object) -> httpx.Request:
        request.extensions = {**request.extensions, "trace": trace}
        return request

    @property
    def stale(self) -> bool:
        return self.sent and not self.connected


async def _send_async(client: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
    reuse = _Reuse()

    async def trace(name: str, info: object) -> None:
        reuse.saw(name)

    try:
        return await client.send(reuse.traced(request, trace))
    except _STALE:
        if not reuse.stale:
            raise
    request.extensions = {k: v for k, v in request.extensions.items() if k != "trace"}
    return await client.send(request)


def _send_sync(client: httpx.Client, request: httpx.Request) -> httpx.Response:
    reuse = _Reuse()

    def trace(name: str, info: object) -> None:
        reuse.saw(name)

    try:
        return client.send(reuse.traced(request, trace))
    except _STALE:
        if not reuse.stale:
            raise
    request.extensions = {k: v for k, v in request.extensions.items() if k != "trace"}
    return client.send(request)


class _AsyncSlots:
    """One event loop's clients, made on first use, and the free ones (a stack)."""

    def __init__(self, make: Callable[[], httpx.AsyncClient]) -> None:
        self.make = make
        self.clients: list[httpx.AsyncClient | None] = [None] * CONNECTIONS
        self.free = list(range(CONNECTIONS - 1, -1, -1))
        self.ready = asyncio.Semaphore(CONNECTIONS)

    def client(self, index: int) -> httpx.AsyncClient:
        client = self.clients[index]
        if client is None or client.is_closed:
            client = self.clients[index] = self.make()
        return client

    async def send(self, request: httpx.Request) -> httpx.Response:
        async with self.ready:  # a slot is free once acquired: pop without awaiting
            index = self.free.pop()
            try:
                return await _send_async(self.client(index), request)
            finally:
                self.free.append(index)

    async def aclose(self, close: bool) -> None:
        clients, self.clients = self.clients, [None] * CONNECTIONS
        if close:
            for client in clients:
                if client is not None:
                    await client.aclose()


def _loop_map() -> MutableMapping[asyncio.AbstractEventLoop, _AsyncSlots]:
    return weakref.WeakKeyDictionary()


class AsyncClients:
    """Pooled `httpx.AsyncClient`s per running event loop (or the caller's own client)."""

    def __init__(
        self,
        *,
        timeout: float,
        transport: httpx.AsyncBaseTransport | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._timeout = timeout
        self._transport = transport
        self._given = client
        self._by_loop = _loop_map()
        self._lock = threading.Lock()

    def _make(self) -> httpx.AsyncClient:
        return _AsyncClient(
            transport=self._transport, timeout=self._timeout, limits=LIMITS, verify=ssl_context()
        )

    def _slots(self) -> _AsyncSlots:
        loop = asyncio.get_running_loop()
        slots = self._by_loop.get(loop)
        if slots is None:
            with self._lock:
                slots = self._by_loop.get(loop)
                if slots is None:
                    slots = self._by_loop[loop] = _AsyncSlots(self._make)
        return slots

    def get(self) -> httpx.AsyncClient:
        """The running loop's first pooled client (the caller's own, if it gave one)."""
        if self._given is not None:
            return self._given
        return self._slots().client(0)

    async def send(self, request: httpx.Request) -> httpx.Response:
        if self._given is not None:
            return await _send_async(self._given, request)
        return await self._slots().send(request)

    async def aclose(self) -> None:
        """Close the running loop's clients (the ASGI lifespan's shutdown calls this)."""
        if self._given is not None:
            return
        with self._lock:
            slots = self._by_loop.pop(asyncio.get_running_loop(), None)
        if slots is not None:
            # A caller's transport is the caller's to close.
            await slots.aclose(close=self._transport is None)


class SyncClients:
    """Pooled thread-safe `httpx.Client`s per process (or the caller's own client)."""

    def __init__(
        self,
        *,
        timeout: float,
        transport: httpx.BaseTransport | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        self._timeout = timeout
        self._transport = transport
        self._given = client
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self._clients: list[httpx.Client | None] = [None] * CONNECTIONS
        self._free = list(range(CONNECTIONS - 1, -1, -1))
        self._ready = threading.Semaphore(CONNECTIONS)
        self._pid = os.getpid()

    def _client(self, index: int) -> httpx.Client:
        client = self._clients[index]
        if client is None or client.is_closed:
            with self._lock:
                client = self._clients[index]
                if client is None or client.is_closed:
                    client = self._clients[index] = _Client(
                        transport=self._transport,
                        timeout=self._timeout,
                        limits=LIMITS,
                        verify=ssl_context(),
                    )
        return client

    def _forked(self) -> None:
        """In a child of a pre-forking server: new clients, never the parent's sockets."""
        with self._lock:
            if self._pid != os.getpid():
                self._reset()

    def get(self) -> httpx.Client:
        """The process's first pooled client (the caller's own, if it gave one)."""
        if self._given is not None:
            return self._given
        if self._pid != os.getpid():
            self._forked()
        return self._client(0)

    def send(self, request: httpx.Request) -> httpx.Response:
        if self._given is not None:
            return _send_sync(self._given, request)
        if self._pid != os.getpid():
            self._forked()
        ready, free = self._ready, self._free
        with ready:  # a slot is free once acquired
            with self._lock:
                index = free.pop()
            try:
                return _send_sync(self._client(index), request)
            finally:
                with self._lock:
                    free.append(index)

    def close(self) -> None:
        if self._given is not None:
            return
        with self._lock:
            clients, self._clients = self._clients, [None] * CONNECTIONS
            mine = self._pid == os.getpid()
        if self._transport is None and mine:
            for client in clients:
                if client is not None:
                    client.close()


# Shared by every middleware and hub of the process that has no transport of its own.
_SHARED_ASYNC: dict[float, AsyncClients] = {}
_SHARED_SYNC: dict[float, SyncClients] = {}
_SHARED_LOCK = threading.Lock()


def async_clients(
    *,
    timeout: float,
    transport: httpx.AsyncBaseTransport | None = None,
    client: httpx.AsyncClient | None = None,
) -> AsyncClients:
    if transport is not None or client is not None:
        return AsyncClients(timeout=timeout, transport=transport, client=client)
    with _SHARED_LOCK:
        return _SHARED_ASYNC.setdefault(timeout, AsyncClients(timeout=timeout))


def sync_clients(
    *,
    timeout: float,
    transport: httpx.BaseTransport | None = None,
    client: httpx.Client | None = None,
) -> SyncClients:
    if transport is not None or client is not None:
        return SyncClients(timeout=timeout, transport=transport, client=client)
    with _SHARED_LOCK:
        return _SHARED_SYNC.setdefault(timeout, SyncClients(timeout=timeout))
