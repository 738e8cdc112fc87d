"""The Redis store beyond the contract: several instances, outages, URLs, event loops."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio

from dingmw.errors import ConfigError, StoreError
from dingmw.stores import open_stores
from dingmw.stores.redis import AsyncRedisStore, RedisStore

from ..redis_server import RedisServer, free_port

pytestmark = pytest.mark.redis

FAST = 3.0  # seconds within which a dead Redis must be reported
PASSWORD = "s3cret-Pa55word"


@pytest.fixture
def sync_store(private_redis: RedisServer) -> Iterator[RedisStore]:
    store = RedisStore(private_redis.url)
    yield store
    store.close()


def assert_fails_fast(call: Callable[[], Any]) -> StoreError:
    started = time.monotonic()
    with pytest.raises(StoreError) as caught:
        call()
    assert time.monotonic() - started < FAST
    return caught.value


async def assert_fails_fast_async(call: Callable[[], Any]) -> StoreError:
    started = time.monotonic()
    with pytest.raises(StoreError) as caught:
        await call()
    assert time.monotonic() - started < FAST
    return caught.value


def assert_no_password(error: StoreError) -> None:
    assert error.status == 503
    assert error.reason == "store_unavailable"
    for text in (str(error), error.detail, repr(error)):
        assert PASSWORD not in text
        assert "Pa55" not in text


# --- several instances ------------------------------------------------------------------


def test_two_instances_refuse_each_others_nonces(redis_server: RedisServer) -> None:
    a, b = RedisStore(redis_server.url), RedisStore(redis_server.url)
    assert isinstance(a.client, redis.Redis)
    assert isinstance(b.client, redis.Redis)
    assert a.client.connection_pool is not b.client.connection_pool
    try:
        assert a.put("state-used:two-instances", "1", 60, only_if_absent=True) is True
        assert b.put("state-used:two-instances", "1", 60, only_if_absent=True) is False
        b.put("code:two-instances", "alice", 60)
        assert a.take("code:two-instances") == "alice"
        assert b.take("code:two-instances") is None
    finally:
        a.close()
        b.close()


async def test_sync_and_async_instances_share_state(redis_server: RedisServer) -> None:
    sync, aio = open_stores(redis_server.url)
    assert isinstance(sync, RedisStore)
    assert isinstance(aio, AsyncRedisStore)
    try:
        assert await aio.put("state-used:mixed", "1", 60, only_if_absent=True) is True
        assert sync.put("state-used:mixed", "1", 60, only_if_absent=True) is False
        sync.put("code:mixed", "alice", 60)
        assert await aio.take("code:mixed") == "alice"
    finally:
        sync.close()


# --- outages ------------------------------------------------------------------------------


def test_sync_store_fails_fast_without_redis_and_recovers(
    private_redis: RedisServer, sync_store: RedisStore
) -> None:
    assert sync_store.put("k", "before", 60) is True  # the pool now holds a live connection
    private_redis.stop()
    operations: list[Callable[[], Any]] = [
        lambda: sync_store.get("k"),
        lambda: sync_store.put("k", "v", 60),
        lambda: sync_store.put("k", "v", 60, only_if_absent=True),
        lambda: sync_store.take("k"),
        lambda: sync_store.delete("k"),
    ]
    for operation in operations:
        error = assert_fails_fast(operation)
        assert_no_password(error)
        assert "unreachable" in error.detail
        assert f"127.0.0.1:{private_redis.port}" in error.detail

    private_redis.start()  # same port, empty data
    assert sync_store.get("k") is None
    assert sync_store.put("k", "after", 60, only_if_absent=True) is True
    assert sync_store.take("k") == "after"


async def test_async_store_fails_fast_without_redis_and_recovers(
    private_redis: RedisServer,
) -> None:
    store = AsyncRedisStore(private_redis.url)
    assert await store.put("k", "before", 60) is True
    private_redis.stop()
    for operation in (
        lambda: store.get("k"),
        lambda: store.put("k", "v", 60),
        lambda: store.put("k", "v", 60, only_if_absent=True),
        lambda: store.take("k"),
        lambda: store.delete("k"),
    ):
        assert_no_password(await assert_fails_fast_async(operation))

    private_redis.start()
    assert await store.get("k") is None
    assert await store.put("k", "after", 60, only_if_absent=True) is True
    assert await store.take("k") == "after"


def test_a_restart_under_traffic_heals_without_recreating_the_store(
    private_redis: RedisServer, sync_store: RedisStore
) -> None:
    """Pooled connections broken by a restart are replaced: no error once Redis is back."""
    for i in range(5):
        sync_store.put(f"warm-{i}", "v", 60)
    private_redis.restart()
    for i in range(20):
        assert sync_store.put(f"after-{i}", "v", 60, only_if_absent=True) is True


async def test_a_restart_under_async_traffic_heals(private_redis: RedisServer) -> None:
    store = AsyncRedisStore(private_redis.url)
    await asyncio.gather(*(store.put(f"warm-{i}", "v", 60) for i in range(5)))
    private_redis.restart()
    results = await asyncio.gather(
        *(store.put(f"after-{i}", "v", 60, only_if_absent=True) for i in range(20))
    )
    assert all(results)


def test_a_hung_redis_times_out(private_redis: RedisServer) -> None:
    """A Redis that accepts connections but never answers fails within the read timeout."""
    assert private_redis.process is not None
    store = RedisStore(private_redis.url, connect_timeout=0.5, read_timeout=0.5)
    try:
        store.put("k", "v", 60)
        os.kill(private_redis.process.pid, signal.SIGSTOP)
        try:
            error = assert_fails_fast(lambda: store.get("k"))
            assert "TimeoutError" in error.detail
            assert_no_password(error)
        finally:
            os.kill(private_redis.process.pid, signal.SIGCONT)
        assert store.get("k") == "v"
    finally:
        store.close()


def test_wrong_password_is_a_store_error_without_the_password(
    private_redis: RedisServer,
) -> None:
    store = RedisStore(private_redis.url.replace(PASSWORD, "not-" + PASSWORD))
    try:
        error = assert_fails_fast(lambda: store.get("k"))
        assert "not-" not in str(error)
        assert_no_password(error)
    finally:
        store.close()


@pytest.mark.parametrize(
    "url",
    [
        f"redis://:{PASSWORD}@127.0.0.1:{{port}}/0",
        f"redis://user:{PASSWORD}@127.0.0.1:{{port}}/0",
        f"redis://127.0.0.1:{{port}}/0?password={PASSWORD}",
    ],
)
async def test_errors_never_show_the_password(url: str) -> None:
    closed = url.format(port=free_port())
    sync, aio = open_stores(closed)
    assert PASSWORD not in repr(sync) + repr(aio)
    assert_no_password(assert_fails_fast(lambda: sync.get("k")))
    assert_no_password(await assert_fails_fast_async(lambda: aio.get("k")))


# --- URLs and configuration ---------------------------------------------------------------


def test_open_stores_accepts_every_redis_scheme(tmp_path: Path) -> None:
    for url in (
        "redis://127.0.0.1:6379/0",
        "rediss://:pw@redis.example:6380/1",
        f"unix://{tmp_path}/redis.sock?db=2",
    ):
        sync, aio = open_stores(url)
        assert isinstance(sync, RedisStore)
        assert isinstance(aio, AsyncRedisStore)
        sync.close()


async def test_unix_socket_url_works() -> None:
    server = RedisServer()
    socket_path = server.dir / "redis.sock"
    server.extra_args = ["--unixsocket", str(socket_path), "--unixsocketperm", "700"]
    with server:
        sync, aio = open_stores(f"unix://{socket_path}?db=1")
        try:
            assert sync.put("unix", "yes", 60) is True
            assert await aio.get("unix") == "yes"
        finally:
            assert isinstance(sync, RedisStore)
            sync.close()


def test_a_bad_redis_url_is_a_config_error_without_the_password() -> None:
    with pytest.raises(ConfigError) as caught:
        open_stores(f"redis://:{PASSWORD}@127.0.0.1:notaport/0")
    assert "DINGMW_STORE_URL" in str(caught.value)
    assert PASSWORD not in str(caught.value)


def test_missing_redis_package_is_a_clear_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)
    monkeypatch.delitem(sys.modules, "dingmw.stores.redis")
    with pytest.raises(ConfigError) as caught:
        open_stores("redis://127.0.0.1:6379/0")
    assert str(caught.value) == (
        "DINGMW_STORE_URL=redis://... needs the redis package: pip install 'dingmw[redis]'"
    )


# --- event loops --------------------------------------------------------------------------


def test_async_store_survives_a_new_event_loop_per_call(redis_server: RedisServer) -> None:
    """As under Starlette's TestClient: each call runs in a fresh loop, then the loop closes."""
    store = AsyncRedisStore(redis_server.url, namespace="loops:")

    async def round_trip(i: int) -> str | None:
        await store.put("k", str(i), 60)
        return await store.take("k")

    for i in range(3):
        assert asyncio.run(round_trip(i)) == str(i)
        gc.collect()  # an unclosed connection of the finished loop would warn (an error here)
    assert len(store._clients) == 1  # clients of closed loops are dropped


async def test_aclose_closes_this_loops_client(redis_server: RedisServer) -> None:
    store = AsyncRedisStore(redis_server.url)
    await store.put("k", "v", 60)
    await store.aclose()
    assert not store._clients
    assert await store.take("k") == "v"  # a new client, on demand


async def test_an_option_redis_py_trips_on_is_a_store_error(redis_server: RedisServer) -> None:
    """Should an option get past the URL check, redis-py's TypeError is the clean 503."""
    sync, aio = open_stores(redis_server.url)
    assert isinstance(sync, RedisStore)
    assert isinstance(aio, AsyncRedisStore)
    client = sync.client
    assert isinstance(client, redis.Redis)
    client.connection_pool.connection_kwargs["no_such_option"] = "1"
    with pytest.raises(StoreError, match="TypeError"):
        sync.get("k")
    async_client = await aio.client()
    assert isinstance(async_client, redis.asyncio.Redis)
    async_client.connection_pool.connection_kwargs["no_such_option"] = "1"
    with pytest.raises(StoreError, match="TypeError"):
        await aio.get("k")
    sync.close()
    await aio.aclose()
