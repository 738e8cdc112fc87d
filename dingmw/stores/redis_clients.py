"""How to reach Redis: one server, a Sentinel-managed master, or a Cluster, with redis-py's
own clients (`redis.Redis`, `Sentinel.master_for`, `RedisCluster`), sync and async.

Every client answers text (`decode_responses`), gives up on a socket after the given
timeouts, and retries little: one immediate reconnect (a pooled connection broken by a
restart, or a Sentinel failover: the reconnect asks the sentinels for the new master),
and for a Cluster two more attempts a moment apart (a slot moving to a promoted replica).
A Redis that stays down therefore fails a request within seconds, as a `StoreError`.
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
import redis.retry
import redis.sentinel
from redis.backoff import ConstantBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .urls import ParsedStoreURL

SyncClient: TypeAlias = "redis.Redis | redis.cluster.RedisCluster"
AsyncClient: TypeAlias = "redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster"
Closer = Callable[[], None]
AsyncCloser = Callable[[], Awaitable[None]]

CLUSTER_ATTEMPTS = 2
CLUSTER_BACKOFF = 0.25  # seconds between two attempts on a Cluster


def _connection(
    parsed: ParsedStoreURL, connect_timeout: float, read_timeout: float
) -> dict[str, Any]:
    options: dict[str, Any] = {
        "socket_connect_timeout": connect_timeout,
        "socket_timeout": read_timeout,
    }
    if parsed.tls:
        options["ssl"] = True
    return options


def _sentinel_options(parsed: ParsedStoreURL, connection: dict[str, Any]) -> dict[str, Any]:
    options = dict(connection)
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
    reconnect = redis.retry.Retry(
        NoBackoff(), 1 if retry else 0, supported_errors=(RedisConnectionError,)
    )
    if parsed.kind == "single":
        options = {**connection, "decode_responses": True, "retry": reconnect}
        options.pop("ssl", None)  # the scheme (rediss://) says it
        client = redis.Redis.from_url(parsed.url, **options)
        return client, client.close
    if parsed.kind == "sentinel":
        sentinel = redis.sentinel.Sentinel(  # type: ignore[no-untyped-call]
            list(parsed.nodes),
            sentinel_kwargs=_sentinel_options(parsed, connection),
            **connection,
        )
        master = sentinel.master_for(  # type: ignore[no-untyped-call]
            parsed.service, db=parsed.db, decode_responses=True, retry=reconnect, **_auth(parsed)
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
    reconnect = redis.asyncio.retry.Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))
    if parsed.kind == "single":
        options = {**connection, "decode_responses": True, "retry": reconnect}
        options.pop("ssl", None)
        client = redis.asyncio.Redis.from_url(parsed.url, **options)
        return client, client.aclose
    if parsed.kind == "sentinel":
        sentinel = redis.asyncio.sentinel.Sentinel(  # type: ignore[no-untyped-call]
            list(parsed.nodes),
            sentinel_kwargs=_sentinel_options(parsed, connection),
            **connection,
        )
        master = sentinel.master_for(
            parsed.service, db=parsed.db, decode_responses=True, retry=reconnect, **_auth(parsed)
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
