"""The Redis store: the same four operations as `memory`, shared by every instance.

`RedisStore` (a `redis.Redis`, for the WSGI driver) and `AsyncRedisStore` (a
`redis.asyncio.Redis`, for the ASGI driver and the hub) speak plain commands:

    get     GET     dingmw:<key>
    put     SET     dingmw:<key> <value> PX <ms> [NX]   (ttl rounded up, at least 1 ms)
    take    GETDEL  dingmw:<key>                         (atomic; Redis >= 6.2)
    delete  DEL     dingmw:<key>

so every key is namespaced and expires by itself, and "set if absent" and
"get and delete" are single commands: two instances racing on one state nonce
or hub code cannot both win.

Failure is loud and short: sockets time out after a second or two, and every
Redis error becomes a `StoreError` (a 503 page) whose message never contains
the URL's password. Nothing is retried beyond one immediate reconnect, which is
what lets a pooled connection broken by a Redis restart heal on the next
command; after that the pool reconnects by itself whenever Redis is back.

A `redis.asyncio` client belongs to the event loop it first ran on (its
sockets and its pool's `asyncio.Lock`), and a loop that has closed leaves its
connections unusable ("Event loop is closed"). Servers keep one loop, but some
callers run each request in a fresh loop (Starlette's `TestClient`, the
`asyncio.run` of a script). `AsyncRedisStore` therefore keeps one client per
running loop, created on first use, and closes it while that loop shuts down
(through the loop's async-generator shutdown hook, which `asyncio.run`,
`asyncio.Runner`, anyio and uvicorn all call), so no socket outlives its loop.
"""

from __future__ import annotations

import asyncio
import math
import threading
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

import redis
import redis.asyncio
import redis.asyncio.retry
import redis.retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from ..errors import ConfigError, StoreError

DEFAULT_NAMESPACE = "dingmw:"
CONNECT_TIMEOUT = 1.0
READ_TIMEOUT = 2.0

T = TypeVar("T")


class RedisURL:
    """A Redis URL, and how to talk about it without its password."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ConfigError("DINGMW_STORE_URL must be redis://, rediss:// or unix://")
        self.url = url
        secrets = {parts.password or ""}
        secrets.update(v for k, v in parse_qsl(parts.query) if k == "password")
        self._secrets = sorted(
            {s for secret in secrets for s in (secret, unquote(secret)) if s}, key=len, reverse=True
        )
        try:
            where = f"{parts.hostname or ''}:{parts.port}" if parts.port else parts.hostname or ""
        except ValueError:  # a port that is not a number
            where = "?"
        self.location = f"{parts.scheme}://{where}{parts.path}"

    def scrub(self, text: str) -> str:
        """`text` with every form of the password replaced by `***`."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def error(self, command: str, exc: RedisError) -> StoreError:
        what = "unreachable" if isinstance(exc, RedisConnectionError) else "failed"
        message = self.scrub(str(exc)) or "no details"
        return StoreError(
            f"Redis {command} {what} at {self.location}: {type(exc).__name__}: {message}"
        )

    def options(self, connect_timeout: float, read_timeout: float) -> dict[str, Any]:
        """Keyword arguments for `from_url` (the URL's own query options still win)."""
        return {
            "decode_responses": True,
            "socket_connect_timeout": connect_timeout,
            "socket_timeout": read_timeout,
        }

    def build(self, factory: Callable[[], T]) -> T:
        """`factory()`, with an invalid URL reported as a `ConfigError` without its password."""
        try:
            return factory()
        except (ValueError, TypeError, RedisError) as exc:
            detail = self.scrub(str(exc))
            raise ConfigError(f"DINGMW_STORE_URL is not a valid Redis URL: {detail}") from None


def _milliseconds(ttl: float) -> int:
    return max(1, math.ceil(ttl * 1000))


def _text(value: bytes | str | None) -> str | None:
    """A reply as text (bytes only if the URL itself turned `decode_responses` off)."""
    return value.decode() if isinstance(value, bytes) else value


class RedisStore:
    """A synchronous store in Redis (thread-safe: redis-py pools its connections)."""

    def __init__(
        self,
        url: str,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
    ) -> None:
        self.url = RedisURL(url)
        self.namespace = namespace
        options = self.url.options(connect_timeout, read_timeout)
        # One immediate retry on a connection error: a pooled connection that a
        # Redis restart broke is replaced at once. Timeouts are not retried.
        options["retry"] = redis.retry.Retry(
            NoBackoff(), 1, supported_errors=(RedisConnectionError,)
        )
        self.client = self.url.build(lambda: redis.Redis.from_url(url, **options))
        # Close the pool's sockets when the store is dropped, even inside a reference cycle
        # (a WSGI app and its middleware), where the socket could be finalized unclosed first.
        self._finalizer = weakref.finalize(self, self.client.close)
        self._probe_lock = threading.Lock()
        self._probe_client: redis.Redis | None = None
        self._probe_timeout = 0.0
        self._probe_finalizer: weakref.finalize[Any, Any] | None = None

    def __repr__(self) -> str:
        return f"RedisStore({self.url.location!r}, namespace={self.namespace!r})"

    def _call(self, command: str, run: Callable[[], T]) -> T:
        try:
            return run()
        except RedisError as exc:
            raise self.url.error(command, exc) from None

    def get(self, key: str) -> str | None:
        name = self.namespace + key
        return _text(self._call("GET", lambda: self.client.get(name)))

    def put(self, key: str, value: str, ttl: float, *, only_if_absent: bool = False) -> bool:
        name, px = self.namespace + key, _milliseconds(ttl)
        done = self._call("SET", lambda: self.client.set(name, value, px=px, nx=only_if_absent))
        return bool(done)

    def take(self, key: str) -> str | None:
        name = self.namespace + key
        return _text(self._call("GETDEL", lambda: self.client.getdel(name)))

    def delete(self, key: str) -> None:
        name = self.namespace + key
        self._call("DEL", lambda: self.client.delete(name))

    def ping(self, within: float) -> None:
        """PING on a connection of its own whose sockets time out after `within` seconds, so a
        Redis that hangs cannot hold a readiness probe longer than that."""
        probe = self._probe(within)
        self._call("PING", probe.ping)

    def _probe(self, timeout: float) -> redis.Redis:
        with self._probe_lock:
            if self._probe_client is None or self._probe_timeout != timeout:
                if self._probe_client is not None:
                    self._probe_client.close()
                options = self.url.options(timeout, timeout)
                self._probe_client = redis.Redis.from_url(self.url.url, **options)
                self._probe_timeout = timeout
                self._probe_finalizer = weakref.finalize(self, self._probe_client.close)
            return self._probe_client

    def close(self) -> None:
        """Close the pooled connections (the store reconnects if used again)."""
        self.client.connection_pool.disconnect()
        with self._probe_lock:
            if self._probe_client is not None:
                self._probe_client.connection_pool.disconnect()


async def _close_with_loop(client: redis.asyncio.Redis) -> AsyncGenerator[None, None]:
    """Suspended for the loop's life; its `finally` runs at the loop's asyncgen shutdown."""
    try:
        yield
    finally:
        await client.aclose()


class AsyncRedisStore:
    """An asynchronous store in Redis: one `redis.asyncio` client per running event loop."""

    def __init__(
        self,
        url: str,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
    ) -> None:
        self.url = RedisURL(url)
        self.namespace = namespace
        self._options = self.url.options(connect_timeout, read_timeout)
        self._options["retry"] = redis.asyncio.retry.Retry(
            NoBackoff(), 1, supported_errors=(RedisConnectionError,)
        )
        # Creating a client opens no socket: this only validates the URL now.
        self.url.build(lambda: redis.asyncio.ConnectionPool.from_url(url, **self._options))
        self._lock = threading.Lock()
        self._clients: dict[
            asyncio.AbstractEventLoop, tuple[redis.asyncio.Redis, AsyncGenerator[None, None]]
        ] = {}

    def __repr__(self) -> str:
        return f"AsyncRedisStore({self.url.location!r}, namespace={self.namespace!r})"

    async def client(self) -> redis.asyncio.Redis:
        """The client of the running loop, created (and tied to its shutdown) on first use."""
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._clients.get(loop)
            if entry is not None:
                return entry[0]
            # Forget the clients of loops that have closed (theirs were closed by the hook).
            for old in [old for old in self._clients if old.is_closed()]:
                del self._clients[old]
            client = redis.asyncio.Redis.from_url(self.url.url, **self._options)
            closer = _close_with_loop(client)
            self._clients[loop] = (client, closer)
        await anext(closer)  # registers the generator with this loop's shutdown hook
        return client

    async def _call(self, command: str, run: Callable[[redis.asyncio.Redis], Awaitable[T]]) -> T:
        try:
            return await run(await self.client())
        except RedisError as exc:
            raise self.url.error(command, exc) from None

    async def get(self, key: str) -> str | None:
        name = self.namespace + key
        return _text(await self._call("GET", lambda c: c.get(name)))

    async def put(self, key: str, value: str, ttl: float, *, only_if_absent: bool = False) -> bool:
        name, px = self.namespace + key, _milliseconds(ttl)
        done = await self._call("SET", lambda c: c.set(name, value, px=px, nx=only_if_absent))
        return bool(done)

    async def take(self, key: str) -> str | None:
        name = self.namespace + key
        return _text(await self._call("GETDEL", lambda c: c.getdel(name)))

    async def delete(self, key: str) -> None:
        name = self.namespace + key
        await self._call("DEL", lambda c: c.delete(name))

    async def ping(self, within: float) -> None:
        """PING, given up after `within` seconds (a cancelled command drops its connection)."""
        try:
            await asyncio.wait_for(self._call("PING", lambda c: c.ping()), within)
        except TimeoutError:
            raise StoreError(
                f"Redis PING timed out after {within:g} s at {self.url.location}"
            ) from None

    async def aclose(self) -> None:
        """Close the running loop's client now (other loops close theirs at shutdown)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._clients.pop(loop, None)
        if entry is not None:
            await entry[1].aclose()
