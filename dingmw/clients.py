"""The HTTP clients the drivers send DingTalk (and hub) calls with: pooled and long-lived.

Building an `httpx` client builds an SSL context (~20 ms of CPU) and a new
connection pool, so nothing here is built per request:

* one SSL context per process, shared by every client (`ssl_context`);
* ASGI: one `httpx.AsyncClient` per event loop (its connections belong to
  the loop that opened them; a process may run several loops, a test client
  per thread say), opened on first use and closed by the ASGI lifespan's
  shutdown (`AsyncClients.aclose`);
* WSGI: one thread-safe `httpx.Client` per process (re-made after a fork,
  so a pre-forking server never shares sockets between workers).

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
from collections.abc import MutableMapping

import httpx

# Sized for a login storm: a login makes 2-5 calls, mostly to two hosts, and
# keeps the connection for the next login (DingTalk keeps idle ones ~60 s). Both
# numbers are kept small on purpose: httpcore walks its whole pool, and for every
# idle connection the pool again, each time a request starts or ends, so 64 idle
# connections cost ~4,000 checks (milliseconds of CPU) per DingTalk call. 64
# connections at DingTalk's tens of milliseconds per call serve well over a thousand
# calls a second, more than one worker's CPU can log people in with.
LIMITS = httpx.Limits(max_connections=64, max_keepalive_connections=8, keepalive_expiry=50)


@functools.cache
def ssl_context() -> ssl.SSLContext:
    """The one SSL context of the process (honours `SSL_CERT_FILE`/`SSL_CERT_DIR`)."""
    return httpx.create_ssl_context()


def _loop_map() -> MutableMapping[asyncio.AbstractEventLoop, httpx.AsyncClient]:
    return weakref.WeakKeyDictionary()


class AsyncClients:
    """One `httpx.AsyncClient` per running event loop (or the caller's own client)."""

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

    def get(self) -> httpx.AsyncClient:
        if self._given is not None:
            return self._given
        loop = asyncio.get_running_loop()
        client = self._by_loop.get(loop)
        if client is None or client.is_closed:
            with self._lock:
                client = self._by_loop.get(loop)
                if client is None or client.is_closed:
                    client = httpx.AsyncClient(
                        transport=self._transport,
                        timeout=self._timeout,
                        limits=LIMITS,
                        verify=ssl_context(),
                    )
                    self._by_loop[loop] = client
        return client

    async def send(self, request: httpx.Request) -> httpx.Response:
        return await self.get().send(request)

    async def aclose(self) -> None:
        """Close the running loop's client (the ASGI lifespan's shutdown calls this)."""
        if self._given is not None:
            return
        with self._lock:
            client = self._by_loop.pop(asyncio.get_running_loop(), None)
        # A caller's transport is the caller's to close.
        if client is not None and self._transport is None:
            await client.aclose()


class SyncClients:
    """One thread-safe `httpx.Client` per process (or the caller's own client)."""

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
        self._client: httpx.Client | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def get(self) -> httpx.Client:
        if self._given is not None:
            return self._given
        client = self._client
        if client is None or self._pid != os.getpid() or client.is_closed:
            with self._lock:
                client = self._client
                if client is None or self._pid != os.getpid() or client.is_closed:
                    client = httpx.Client(
                        transport=self._transport,
                        timeout=self._timeout,
                        limits=LIMITS,
                        verify=ssl_context(),
                    )
                    self._client, self._pid = client, os.getpid()
        return client

    def send(self, request: httpx.Request) -> httpx.Response:
        return self.get().send(request)

    def close(self) -> None:
        if self._given is not None:
            return
        with self._lock:
            client, self._client = self._client, None
        if client is not None and self._transport is None and self._pid == os.getpid():
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
