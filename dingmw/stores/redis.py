"""The Redis store: the same four operations as `memory`, shared by every instance.

`RedisStore` (sync, for the WSGI driver) and `AsyncRedisStore` (asyncio, for the
ASGI driver and the hub) reach one Redis, a Sentinel-managed master or a Redis
Cluster (`redis_clients`, from `DINGMW_STORE_URL`), and speak plain commands:

    get     GET     dingmw:<key>
    put     SET     dingmw:<key> <value> PX <ms> [NX]   (ttl rounded up, at least 1 ms)
    take    GETDEL  dingmw:<key>                         (atomic; Redis >= 6.2)
    delete  DEL     dingmw:<key>
    batch   the same commands in one pipeline (one round trip, not a transaction;
            on a Cluster, redis-py's cluster pipeline sends each node its share)

so every key is namespaced and expires by itself, and "set if absent" and
"get and delete" are single commands: two instances racing on one state nonce
or hub code cannot both win. Every command names one key, so a Cluster routes
each to the one node that owns its slot; nothing ever spans two slots.

Failure is loud and short: sockets time out after a second or two, and every
Redis error becomes a `StoreError` (a 503 page) whose message never contains
the URL's password. Nothing is retried beyond one immediate reconnect, which is
what lets a pooled connection broken by a Redis restart heal on the next
command; after that the pool reconnects by itself whenever Redis is back. Behind
Sentinel the reconnect asks the sentinels where the master is now, so a
failover heals the same way; a Cluster refreshes its slot map.

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
import dataclasses
import math
import re
import threading
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
from redis.exceptions import ClusterDownError, RedisClusterException, RedisError
from redis.exceptions import ConnectionError as RedisConnectionError

from .. import metrics
from ..core.effects import StoreGet, StorePut, StoreTake
from ..errors import ConfigError, StoreError
from . import BatchOp, StoreReply
from .redis_clients import AsyncClient, AsyncCloser, Closer, SyncClient, async_client, sync_client
from .urls import BadStoreURL, ParsedStoreURL, parse_store_url

DEFAULT_NAMESPACE = "dingmw:"
CONNECT_TIMEOUT = 1.0
READ_TIMEOUT = 2.0

T = TypeVar("T")
# TypeError: what redis-py raises, at the first command, for a connection option its
# connections do not take (a URL's options are checked when it is read, so only in case).
Failure = RedisError | RedisClusterException | TypeError
FAILURES = (RedisError, RedisClusterException, TypeError)
# A sentinel that failed, in redis-py's MasterNotFoundError: "<…Connection(…,host=h,port=p,…)>)>)>
# - network:ConnectionError" (redis-py 8) or "… - TimeoutError('…')" (earlier).
_SENTINEL_FAILURE = re.compile(r"\bhost=([^,]+),port=(\d+).*? - (?:\w+:)?(\w+)")


class RedisURL:
    """A Redis URL, and how to talk about it without its password."""

    def __init__(self, url: str) -> None:
        try:
            parsed = parse_store_url(url)
        except BadStoreURL as exc:
            raise ConfigError(f"DINGMW_STORE_URL {exc}") from None
        if parsed.kind == "memory":
            raise ConfigError("DINGMW_STORE_URL: a Redis store needs a Redis URL, not memory://")
        self.url = url
        self.parsed: ParsedStoreURL = parsed
        self._secrets = parsed.secrets
        self.location = parsed.location

    def scrub(self, text: str) -> str:
        """`text` with every form of the password replaced by `***`."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def error(self, command: str, exc: Failure) -> StoreError:
        what = "unreachable" if isinstance(exc, RedisConnectionError) else "failed"
        if type(exc).__name__ == "MasterNotFoundError":  # redis.sentinel's or redis.asyncio's
            message = self._no_master(str(exc))
        else:
            message = self.scrub(str(exc)) or "no details"
        return StoreError(
            f"Redis {command} {what} at {self.location}: {type(exc).__name__}: {message}"
        )

    def _no_master(self, text: str) -> str:
        """redis-py's long MasterNotFoundError (every sentinel client's repr) in short: the
        service, and what each sentinel asked did (when redis-py's text says it)."""
        failed = {(h, int(p)): error for h, p, error in _SENTINEL_FAILURE.findall(text)}
        readable = bool(failed) or " : " not in text  # else: redis-py wrote something new
        asked = []
        for host, port in self.parsed.nodes:
            where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            if readable:
                where += f" ({failed.get((host, port), 'no such master')})"
            asked.append(where)
        service = self.parsed.service
        return f"no sentinel named a master for {service!r} (asked {', '.join(asked)})"

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


def _queue(pipe: Any, namespace: str, ops: Sequence[BatchOp]) -> None:
    """Queue `ops` on a redis-py pipeline (sync or async, single or Cluster)."""
    for op in ops:
        name = namespace + op.key
        if isinstance(op, StoreGet):
            pipe.get(name)
        elif isinstance(op, StorePut):
            pipe.set(name, op.value, px=_milliseconds(op.ttl), nx=op.only_if_absent)
        elif isinstance(op, StoreTake):
            pipe.getdel(name)
        else:
            pipe.delete(name)


def _replies(ops: Sequence[BatchOp], replies: Sequence[Any]) -> list[StoreReply]:
    """A pipeline's replies as the single operations' methods would return them."""
    out: list[StoreReply] = []
    for op, reply in zip(ops, replies, strict=True):
        if isinstance(op, StoreGet | StoreTake):
            out.append(_text(reply))
        elif isinstance(op, StorePut):
            out.append(bool(reply))
        else:
            out.append(None)
    return out


def _cluster_ready(replies: Any) -> None:
    """Raise unless every primary's `CLUSTER INFO` (redis-py's answer: one node's, or a dict
    of them by node name) says `cluster_state:ok`. A PING alone would pass on the one node
    redis-py picks by default while another primary is down, or while a restarted cluster
    still refuses commands."""
    by_node = {"": replies} if "cluster_state" in replies else replies
    for node, info in by_node.items():
        state = info.get("cluster_state") if isinstance(info, dict) else None
        if state != "ok":
            where = f" on {node}" if node else ""
            raise ClusterDownError(f"cluster_state is {state or 'unknown'}{where}")


def _close_all(closers: list[Closer]) -> None:
    for close in closers:
        close()


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
        self._timeouts = (connect_timeout, read_timeout)
        self._lock = threading.Lock()
        self._client: SyncClient | None = None
        self._probe_client: SyncClient | None = None
        self._probe_timeout = 0.0
        self._closers: list[Closer] = []
        # Close the sockets when the store is dropped, even inside a reference cycle (a WSGI
        # app and its middleware), where a socket could be finalized unclosed first.
        self._finalizer = weakref.finalize(self, _close_all, self._closers)
        if self.url.parsed.kind != "cluster":  # a Cluster client connects when made: later
            self._client = self.url.build(lambda: self._open(*self._timeouts, retry=True))

    def _open(self, connect_timeout: float, read_timeout: float, *, retry: bool) -> SyncClient:
        client, close = sync_client(
            self.url.parsed,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retry=retry,
        )
        self._closers.append(close)
        return client

    @property
    def client(self) -> SyncClient:
        """The client (a Cluster's is made on first use, when its nodes first answer)."""
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._open(*self._timeouts, retry=True)
                client = self._client
        return client

    def __repr__(self) -> str:
        return f"RedisStore({self.url.location!r}, namespace={self.namespace!r})"

    def _call(self, command: str, run: Callable[[], T]) -> T:
        try:
            with metrics.store_operation(command):
                return run()
        except FAILURES as exc:
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

    def batch(self, ops: Sequence[BatchOp]) -> list[StoreReply]:
        def run() -> list[Any]:
            pipe = self.client.pipeline(transaction=False)
            _queue(pipe, self.namespace, ops)
            return list(pipe.execute())

        return _replies(ops, self._call("PIPELINE", run))

    def ping(self, within: float) -> None:
        """PING on a client of its own whose sockets time out after `within` seconds, so a
        Redis that hangs cannot hold a readiness probe longer than that. A Cluster is asked
        `CLUSTER INFO` on every primary instead (`_cluster_ready`)."""

        def run() -> None:
            client = self._probe(within)
            if isinstance(client, redis.cluster.RedisCluster):
                _cluster_ready(
                    client.cluster_info(target_nodes=redis.cluster.RedisCluster.PRIMARIES)
                )
            else:
                client.ping()

        self._call("PING", run)

    def _probe(self, within: float) -> SyncClient:
        with self._lock:
            if self._probe_client is None or self._probe_timeout != within:
                self._probe_client = self._open(within, within, retry=False)
                self._probe_timeout = within
            return self._probe_client

    def close(self) -> None:
        """Close every connection (the store reconnects if used again)."""
        with self._lock:
            closers = list(self._closers)
            self._closers.clear()
            self._client = self._probe_client = None
        _close_all(closers)


async def _close_with_loop(close: AsyncCloser) -> AsyncGenerator[None, None]:
    """Suspended for the loop's life; its `finally` runs at the loop's asyncgen shutdown."""
    try:
        yield
    finally:
        await close()


@dataclasses.dataclass(slots=True)
class _LoopClient:
    client: AsyncClient
    closer: AsyncGenerator[None, None]
    ready: asyncio.Event  # set once the client may be used (a Cluster's slot map is read)


class AsyncRedisStore:
    """An asynchronous store in Redis: one redis-py asyncio client per running event loop."""

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
        self._timeouts = (connect_timeout, read_timeout)
        if self.url.parsed.kind == "single":  # let redis-py read the URL's options now
            self.url.build(lambda: redis.asyncio.ConnectionPool.from_url(url))
        self._lock = threading.Lock()
        self._clients: dict[asyncio.AbstractEventLoop, _LoopClient] = {}

    def _open(self) -> tuple[AsyncClient, AsyncCloser]:
        connect_timeout, read_timeout = self._timeouts
        return async_client(
            self.url.parsed, connect_timeout=connect_timeout, read_timeout=read_timeout
        )

    def __repr__(self) -> str:
        return f"AsyncRedisStore({self.url.location!r}, namespace={self.namespace!r})"

    async def client(self) -> AsyncClient:
        """The client of the running loop, created (and tied to its shutdown) on first use."""
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._clients.get(loop)
            if entry is None:
                # Forget the clients of loops that have closed (theirs were closed by the hook).
                for old in [old for old in self._clients if old.is_closed()]:
                    del self._clients[old]
                client, close = self._open()
                entry = _LoopClient(client, _close_with_loop(close), asyncio.Event())
                self._clients[loop] = entry
                first = True
            else:
                first = False
        if first:
            try:
                await anext(entry.closer)  # registers the generator with the loop's shutdown hook
                if isinstance(entry.client, redis.asyncio.cluster.RedisCluster):
                    # Read the slot map once, before any command: redis-py's asyncio Cluster
                    # client, first used by many tasks at once, has them refresh it together
                    # and break each other's new connections.
                    await entry.client.initialize()
            finally:
                entry.ready.set()
        else:
            await entry.ready.wait()
        return entry.client

    async def _call(self, command: str, run: Callable[[AsyncClient], Awaitable[T]]) -> T:
        try:
            with metrics.store_operation(command):
                return await run(await self.client())
        except FAILURES as exc:
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

    async def batch(self, ops: Sequence[BatchOp]) -> list[StoreReply]:
        async def run(client: AsyncClient) -> list[Any]:
            pipe = client.pipeline(transaction=False)
            _queue(pipe, self.namespace, ops)
            return list(await pipe.execute())

        return _replies(ops, await self._call("PIPELINE", run))

    async def ping(self, within: float) -> None:
        """PING (a Cluster: `CLUSTER INFO` on every primary), given up after `within` seconds
        (a cancelled command drops its connection)."""

        async def run(client: AsyncClient) -> None:
            if isinstance(client, redis.asyncio.cluster.RedisCluster):
                primaries = redis.asyncio.cluster.RedisCluster.PRIMARIES
                _cluster_ready(await client.cluster_info(target_nodes=primaries))
            else:
                await client.ping()

        try:
            await asyncio.wait_for(self._call("PING", run), within)
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
            await entry.closer.aclose()
