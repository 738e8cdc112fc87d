"""How to reach Redis: one server, a Sentinel-managed master, or a Cluster, with redis-py's
own clients (`redis.Redis`, `Sentinel.master_for`, `RedisCluster`), sync and async.

Every client answers text (`decode_responses`), gives up on a socket after the given
timeouts, and retries little: one immediate reconnect (a pooled connection broken by a
restart, or a Sentinel failover: the reconnect asks the sentinels for the new master),
and for a Cluster two more attempts a moment apart (a slot moving to a promoted replica).
The sentinels themselves are asked with the same timeouts and the same one reconnect, one
after the other, so one that answers is enough. A Redis that stays down therefore fails a
request within seconds, as a `StoreError`.

A connection whose command failed midway (a read timed out, a reply was cut) is closed, never
used again: its late reply would otherwise be read as the next command's. redis-py does this
for its own connections, but not for the sync Sentinel-managed ones, whose `read_response`
keeps the connection by default: `SentinelConnection` closes it, so that the next command
reconnects and, in doing so, asks the sentinels where the master is now (a master that hangs
and is replaced is left as soon as the sentinels name another).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.retry
import redis.asyncio.sentinel
import redis.cluster
import redis.connection
import redis.retry
import redis.sentinel
from redis.backoff import ConstantBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.utils import SENTINEL

from .urls import ParsedStoreURL

SyncClient: TypeAlias = "redis.Redis | redis.cluster.RedisCluster"
AsyncClient: TypeAlias = "redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster"
Closer = Callable[[], None]
AsyncCloser = Callable[[], Awaitable[None]]

CLUSTER_ATTEMPTS = 2
CLUSTER_BACKOFF = 0.25  # seconds between two attempts on a Cluster


class SentinelConnection(redis.sentinel.SentinelManagedConnection):
    """A sync Sentinel-managed connection that is closed when reading a reply fails (as
    redis-py's other connections are), so no reply is ever read for the wrong command."""

    def read_response(
        self,
        disable_decoding: bool = False,
        *,
        timeout: float | object = SENTINEL,
        disconnect_on_error: bool | None = True,
        push_request: bool | None = False,
    ) -> Any:
        return super().read_response(
            disable_decoding,
            timeout=timeout,
            disconnect_on_error=disconnect_on_error,
            push_request=push_request,
        )


class SentinelSSLConnection(SentinelConnection, redis.connection.SSLConnection):
    pass


def _connection(
    parsed: ParsedStoreURL, connect_timeout: float, read_timeout: float
) -> dict[str, Any]:
    options: dict[str, Any] = {
        "socket_connect_timeout": connect_timeout,
        "socket_timeout": read_timeout,
    }
    if parsed.tls:
        options["ssl"] = True
        options.update(parsed.tls_options)  # the certificates, as the URL gives them
    return options


def _sentinel_options(
    parsed: ParsedStoreURL, connection: dict[str, Any], retry: Any
) -> dict[str, Any]:
    """How to reach the sentinels: as the master (timeouts, TLS and its certificates), with
    the same small retry (redis-py's default would retry ten times, backing off)."""
    options = {**connection, "retry": retry}
    if parsed.sentinel_password:
        options["password"] = parsed.sentinel_password
    return options


def _auth(parsed: ParsedStoreURL) -> dict[str, Any]:
    return {"username": parsed.username, "password": parsed.password}


def sync_client(
    parsed: ParsedStoreURL, *, connect_timeout: float, read_timeout: float, retry: bool
) -> tuple[SyncClient, Closer]:
    """A client for `parsed` and how to close everything it opened. No socket is opened here
    except for a Cluster, whose client reads the slot map when it is made."""
    connection = _connection(parsed, connect_timeout, read_timeout)

    def reconnect() -> redis.retry.Retry:
        return redis.retry.Retry(
            NoBackoff(), 1 if retry else 0, supported_errors=(RedisConnectionError,)
        )

    if parsed.kind == "single":
        options = {**connection, "decode_responses": True, "retry": reconnect()}
        options.pop("ssl", None)  # the scheme (rediss://) says it
        client = redis.Redis.from_url(parsed.url, **options)
        return client, client.close
    if parsed.kind == "sentinel":
        sentinel = redis.sentinel.Sentinel(  # type: ignore[no-untyped-call]
            list(parsed.nodes),
            sentinel_kwargs=_sentinel_options(parsed, connection, reconnect()),
            **connection,
        )
        master = sentinel.master_for(  # type: ignore[no-untyped-call]
            parsed.service,
            db=parsed.db,
            decode_responses=True,
            retry=reconnect(),
            connection_class=SentinelSSLConnection if parsed.tls else SentinelConnection,
            **_auth(parsed),
        )

        def close() -> None:
            master.close()
            for watcher in sentinel.sentinels:
                watcher.close()

        return master, close
    cluster = redis.cluster.RedisCluster(
        startup_nodes=[
            redis.cluster.ClusterNode(host, port)  # type: ignore[no-untyped-call]
            for host, port in parsed.nodes
        ],
        decode_responses=True,
        retry=redis.retry.Retry(
            ConstantBackoff(CLUSTER_BACKOFF),
            CLUSTER_ATTEMPTS if retry else 0,
            supported_errors=(RedisConnectionError, RedisTimeoutError),
        ),
        **connection,
        **_auth(parsed),
    )
    return cluster, cluster.close


def async_client(
    parsed: ParsedStoreURL, *, connect_timeout: float, read_timeout: float
) -> tuple[AsyncClient, AsyncCloser]:
    """An asyncio client for `parsed` (nothing connects before its first command)."""
    connection = _connection(parsed, connect_timeout, read_timeout)

    def reconnect() -> redis.asyncio.retry.Retry:
        return redis.asyncio.retry.Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))

    if parsed.kind == "single":
        options = {**connection, "decode_responses": True, "retry": reconnect()}
        options.pop("ssl", None)
        client = redis.asyncio.Redis.from_url(parsed.url, **options)
        return client, client.aclose
    if parsed.kind == "sentinel":
        # redis-py's asyncio Sentinel-managed connections close themselves on a failed read.
        sentinel = redis.asyncio.sentinel.Sentinel(  # type: ignore[no-untyped-call]
            list(parsed.nodes),
            sentinel_kwargs=_sentinel_options(parsed, connection, reconnect()),
            **connection,
        )
        master = sentinel.master_for(
            parsed.service, db=parsed.db, decode_responses=True, retry=reconnect(), **_auth(parsed)
        )

        async def close() -> None:
            await master.aclose()
            for watcher in sentinel.sentinels:
                await watcher.aclose()

        return master, close
    cluster = redis.asyncio.cluster.RedisCluster(
        startup_nodes=[
            redis.asyncio.cluster.ClusterNode(host, port) for host, port in parsed.nodes
        ],
        decode_responses=True,
        retry=redis.asyncio.retry.Retry(
            ConstantBackoff(CLUSTER_BACKOFF),
            CLUSTER_ATTEMPTS,
            supported_errors=(RedisConnectionError, RedisTimeoutError),
        ),
        **connection,
        **_auth(parsed),
    )
    return cluster, cluster.aclose
