"""The Redis store behind Sentinel, beyond the contract: a master that hangs, sentinels that
are down or hang, and what the store says when no sentinel names a master."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from dingmw.errors import StoreError
from dingmw.stores.redis import AsyncRedisStore, RedisStore

from ..redis_ha import SERVICE, SentinelSetup, wait_until
from ..redis_server import HOST, free_port, ping
from .conftest import HA_PASSWORD

pytestmark = pytest.mark.redis

TIMEOUT = 0.5  # the stores' socket timeouts here: a hung server costs this much per command


@pytest.fixture
def sentinel() -> Iterator[SentinelSetup]:
    """A Sentinel setup of this test's own (it hangs its master)."""
    with SentinelSetup(password=HA_PASSWORD) as setup:
        yield setup


@contextlib.contextmanager
def hung(pid: int) -> Iterator[None]:
    """The process stopped (it accepts connections, answers nothing) until the block ends."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def master_pid(setup: SentinelSetup) -> int:
    port = setup.master_port()
    process = next(s for s in setup.servers if s.port == port).process
    assert process is not None
    return process.pid


def no_failover(setup: SentinelSetup) -> None:
    """Sentinels that wait long before they call the master down (it only hangs a while)."""
    for watcher in setup.sentinels:
        watcher.client().execute_command(  # type: ignore[no-untyped-call]
            "SENTINEL", "SET", SERVICE, "down-after-milliseconds", "60000"
        )


def answers(port: int) -> bool:
    """The server answers again: it has read whatever was sent to it while it hung."""
    return ping(port).startswith((b"+PONG", b"-NOAUTH"))


def elapsed(call: Callable[[], Any]) -> float:
    start = time.monotonic()
    call()
    return time.monotonic() - start


# --- a master that hangs --------------------------------------------------------------------


def test_sync_store_never_reads_a_reply_meant_for_another_command(
    sentinel: SentinelSetup,
) -> None:
    """A command that timed out leaves its reply on the socket when the master resumes; the
    next command on that connection must not read it as its own."""
    no_failover(sentinel)
    store = RedisStore(sentinel.url, connect_timeout=TIMEOUT, read_timeout=TIMEOUT)
    try:
        store.put("victim", "value-of-victim", 60)
        store.put("other", "value-of-other", 60)
        port = sentinel.master_port()
        with hung(master_pid(sentinel)), pytest.raises(StoreError, match="TimeoutError"):
            store.get("victim")
        wait_until("the master answering again", lambda: answers(port))
        assert store.get("other") == "value-of-other"
        assert store.put("fresh", "1", 60, only_if_absent=True) is True
        assert store.get("missing") is None
        assert store.batch([]) == []
        assert store.take("other") == "value-of-other"
    finally:
        store.close()


async def test_async_store_never_reads_a_reply_meant_for_another_command(
    sentinel: SentinelSetup,
) -> None:
    no_failover(sentinel)
    store = AsyncRedisStore(sentinel.url, connect_timeout=TIMEOUT, read_timeout=TIMEOUT)
    try:
        await store.put("victim", "value-of-victim", 60)
        await store.put("other", "value-of-other", 60)
        port = sentinel.master_port()
        with hung(master_pid(sentinel)), pytest.raises(StoreError, match="TimeoutError"):
            await store.get("victim")
        wait_until("the master answering again", lambda: answers(port))
        assert await store.get("other") == "value-of-other"
        assert await store.put("fresh", "1", 60, only_if_absent=True) is True
        assert await store.get("missing") is None
    finally:
        await store.aclose()


def reaches(store: RedisStore) -> bool:
    """Whether a write gets through (a `StoreError` is a "not yet")."""
    try:
        return store.put("after", "1", 60) is True
    except StoreError:
        return False


def test_sync_store_leaves_a_hung_master_once_the_sentinels_replace_it(
    sentinel: SentinelSetup,
) -> None:
    """While the old master stays hung, the store asks the sentinels again on its next
    command, and reaches the promoted replica (it does not keep timing out on the old one)."""
    store = RedisStore(sentinel.url, connect_timeout=TIMEOUT, read_timeout=TIMEOUT)
    try:
        store.put("before", "1", 60)
        old = sentinel.master_port()
        with hung(master_pid(sentinel)):
            with pytest.raises(StoreError, match="TimeoutError"):
                store.put("during", "1", 60)
            wait_until("a replica promoted", lambda: sentinel.master_port() != old, 30)
            # The failed command closed its connection: the next ones ask the sentinels,
            # which name the promoted replica as soon as they all agree on it (a moment
            # after the first of them reports it: meanwhile "no master" is the answer).
            wait_until("the store on the promoted master", lambda: reaches(store), 10)
            assert store.get("before") == "1"  # replicated before the master hung
    finally:
        store.close()


# --- sentinels that are down or hang ------------------------------------------------------


def with_first_sentinel(url: str, host: str, port: int) -> str:
    return url.replace("@", f"@{host}:{port},", 1)


async def test_a_sentinel_refusing_connections_costs_nothing(
    redis_sentinel: SentinelSetup,
) -> None:
    """The first sentinel listed refuses connections: the others answer at once (redis-py's
    default retry, ten times with backoff, took seconds and failed the readiness probe)."""
    url = with_first_sentinel(redis_sentinel.url, HOST, free_port())
    sync = RedisStore(url)
    try:
        assert elapsed(lambda: sync.ping(1.0)) < 1.0
        assert elapsed(lambda: sync.put("k", "v", 60)) < 1.0
    finally:
        sync.close()
    aio = AsyncRedisStore(url)
    start = time.monotonic()
    await aio.ping(1.0)
    assert await aio.get("k") == "v"
    assert time.monotonic() - start < 1.0
    await aio.aclose()


def test_a_hung_sentinel_costs_one_timeout(redis_sentinel: SentinelSetup) -> None:
    """The first sentinel listed hangs: asking it costs one socket timeout, then the next
    one answers (redis-py's default retry made master discovery take some 25 seconds)."""
    process = redis_sentinel.sentinels[0].process
    assert process is not None
    with hung(process.pid):
        store = RedisStore(redis_sentinel.url, connect_timeout=TIMEOUT, read_timeout=TIMEOUT)
        try:
            assert elapsed(lambda: store.put("k", "v", 60)) < 2 * TIMEOUT + 1.0
        finally:
            store.close()

        async def discover() -> float:
            aio = AsyncRedisStore(redis_sentinel.url, connect_timeout=TIMEOUT, read_timeout=TIMEOUT)
            start = time.monotonic()
            assert await aio.get("k") == "v"
            took = time.monotonic() - start
            await aio.aclose()
            return took

        assert asyncio.run(discover()) < 2 * TIMEOUT + 1.0


# --- no master --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_no_master_found_is_a_short_message_without_secrets(mode: str) -> None:
    dead = [free_port(), free_port()]
    url = (
        f"redis+sentinel://:{HA_PASSWORD}@{HOST}:{dead[0]},{HOST}:{dead[1]}/{SERVICE}/0"
        f"?sentinel_password=sentinel-{HA_PASSWORD}"
    )
    get: Callable[[], object] = (
        (lambda: RedisStore(url).get("k"))
        if mode == "sync"
        else (lambda: asyncio.run(AsyncRedisStore(url).get("k")))
    )
    with pytest.raises(StoreError) as caught:
        get()
    detail = caught.value.detail
    assert len(detail) < 300, detail
    assert HA_PASSWORD not in detail
    assert f"no sentinel named a master for '{SERVICE}'" in detail
    for port in dead:
        assert f"{HOST}:{port} (ConnectionError)" in detail
    assert "redis.client" not in detail
    assert "<" not in detail
