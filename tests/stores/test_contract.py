"""One store contract, run on every implementation the drivers use: memory, and Redis as one
server, behind Sentinel and as a Cluster (each sync and async).

Each test body drives an async face: the sync stores (`MemoryStore`,
`RedisStore`) are wrapped by `SyncFace`, which calls them directly (and races
them from real threads). Expiry uses the memory store's injected timer, and a
short real TTL on Redis that the test polls for with a deadline.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from dingmw.core.effects import StoreDelete, StoreGet, StorePut, StoreTake
from dingmw.stores import AsyncStore, BatchOp, Store, StoreReply
from dingmw.stores.memory import MemoryStore
from dingmw.stores.redis import AsyncRedisStore, RedisStore

RACERS = 20
SHORT_TTL = 1.0  # seconds, on a real Redis: long enough for two commands on a loaded machine
DEADLINE = 5.0


class Timer:
    """The memory store's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class SyncFace:
    """The async interface over a sync store, so one test body drives both kinds."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def get(self, key: str) -> str | None:
        return self.store.get(key)

    async def put(self, key: str, value: str, ttl: float, *, only_if_absent: bool = False) -> bool:
        return self.store.put(key, value, ttl, only_if_absent=only_if_absent)

    async def take(self, key: str) -> str | None:
        return self.store.take(key)

    async def delete(self, key: str) -> None:
        self.store.delete(key)

    async def ping(self, within: float) -> None:
        self.store.ping(within)

    async def batch(self, ops: Sequence[BatchOp]) -> list[StoreReply]:
        return self.store.batch(ops)  # type: ignore[attr-defined, no-any-return]


@dataclasses.dataclass
class Subject:
    name: str
    store: AsyncStore
    race: Callable[[str, int], Awaitable[list[bool]]]
    # Memory: the timer to move; Redis: None (real time passes).
    timer: Timer | None = None
    # Redis: the namespace its keys live under.
    namespace: str | None = None

    @property
    def short_ttl(self) -> float:
        return 1.0 if self.timer else SHORT_TTL

    async def wait_expired(self, key: str, ttl: float) -> None:
        """Let `ttl` seconds pass and see `key` gone (polling with a deadline on Redis)."""
        if self.timer is not None:
            self.timer.now += ttl + 0.001
            assert await self.store.get(key) is None
            return
        deadline = time.monotonic() + ttl + DEADLINE
        while await self.store.get(key) is not None:
            assert time.monotonic() < deadline, f"{key} did not expire within {ttl}s"
            await asyncio.sleep(0.02)


def thread_race(store: Store) -> Callable[[str, int], Awaitable[list[bool]]]:
    async def race(key: str, n: int) -> list[bool]:
        barrier = threading.Barrier(n)

        def one(i: int) -> bool:
            barrier.wait()
            return store.put(key, f"racer-{i}", 60, only_if_absent=True)

        with ThreadPoolExecutor(n) as pool:
            return list(pool.map(one, range(n)))

    return race


def task_race(store: AsyncStore) -> Callable[[str, int], Awaitable[list[bool]]]:
    async def race(key: str, n: int) -> list[bool]:
        start = asyncio.Event()

        async def one(i: int) -> bool:
            await start.wait()
            return await store.put(key, f"racer-{i}", 60, only_if_absent=True)

        tasks = [asyncio.create_task(one(i)) for i in range(n)]
        await asyncio.sleep(0)
        start.set()
        return list(await asyncio.gather(*tasks))

    return race


IMPLEMENTATIONS = (
    "memory",
    "memory-aio",
    pytest.param("redis", marks=pytest.mark.redis),
    pytest.param("redis-aio", marks=pytest.mark.redis),
    pytest.param("sentinel", marks=pytest.mark.redis),
    pytest.param("sentinel-aio", marks=pytest.mark.redis),
    pytest.param("cluster", marks=pytest.mark.redis),
    pytest.param("cluster-aio", marks=pytest.mark.redis),
)


@pytest.fixture(params=IMPLEMENTATIONS)
def subject(request: pytest.FixtureRequest, namespace: str) -> Iterator[Subject]:
    kind: str = request.param
    if kind.startswith("memory"):
        timer = Timer()
        memory = MemoryStore(timer=timer)
        if kind == "memory":
            yield Subject(kind, SyncFace(memory), thread_race(memory), timer=timer)
        else:
            aio = memory.aio()
            yield Subject(kind, aio, task_race(aio), timer=timer)
        return
    if kind.startswith(("sentinel", "cluster")):
        setup = request.getfixturevalue(f"redis_{kind.partition('-')[0]}")
        url = setup.url
    else:
        url = request.getfixturevalue("redis_server").url
    if not kind.endswith("-aio"):
        store = RedisStore(url, namespace=namespace)
        yield Subject(kind, SyncFace(store), thread_race(store), namespace=namespace)
        store.close()
    else:
        astore = AsyncRedisStore(url, namespace=namespace)
        yield Subject(kind, astore, task_race(astore), namespace=namespace)


async def test_get_of_a_missing_key_is_none(subject: Subject) -> None:
    assert await subject.store.get("missing") is None
    assert await subject.store.take("missing") is None


async def test_put_then_get(subject: Subject) -> None:
    assert await subject.store.put("k", "v1", 60) is True
    assert await subject.store.get("k") == "v1"
    # Values are text, kept exactly (non-ASCII and JSON included).
    value = '{"nick": "张三", "n": 1}'
    assert await subject.store.put("json", value, 60) is True
    assert await subject.store.get("json") == value


async def test_put_overwrites(subject: Subject) -> None:
    await subject.store.put("k", "v1", 60)
    assert await subject.store.put("k", "v2", 60) is True
    assert await subject.store.get("k") == "v2"


async def test_only_if_absent_refuses_an_existing_key_and_accepts_after_expiry(
    subject: Subject,
) -> None:
    ttl = subject.short_ttl
    assert await subject.store.put("nonce", "first", ttl, only_if_absent=True) is True
    assert await subject.store.put("nonce", "second", 60, only_if_absent=True) is False
    assert await subject.store.get("nonce") == "first"
    await subject.wait_expired("nonce", ttl)
    assert await subject.store.put("nonce", "third", 60, only_if_absent=True) is True
    assert await subject.store.get("nonce") == "third"


async def test_take_returns_and_deletes(subject: Subject) -> None:
    await subject.store.put("code", "alice", 60)
    assert await subject.store.take("code") == "alice"
    assert await subject.store.take("code") is None
    assert await subject.store.get("code") is None


async def test_delete(subject: Subject) -> None:
    await subject.store.put("k", "v", 60)
    await subject.store.delete("k")
    assert await subject.store.get("k") is None
    await subject.store.delete("k")  # deleting a missing key is fine
    assert await subject.store.put("k", "again", 60, only_if_absent=True) is True


async def test_a_working_store_answers_ping(subject: Subject) -> None:
    await subject.store.ping(1.0)


async def test_values_expire(subject: Subject) -> None:
    ttl = subject.short_ttl
    await subject.store.put("short", "v", ttl)
    await subject.store.put("long", "v", 600)
    assert await subject.store.get("short") == "v"
    await subject.wait_expired("short", ttl)
    assert await subject.store.take("short") is None
    assert await subject.store.get("long") == "v"


async def test_exactly_one_racer_wins_put_if_absent(subject: Subject) -> None:
    results = await subject.race("state-used:raced", RACERS)
    assert results.count(True) == 1, results
    winner = results.index(True)
    assert await subject.store.get("state-used:raced") == f"racer-{winner}"


async def test_exactly_one_taker_gets_a_value(subject: Subject) -> None:
    """A single-use code taken by many requests at once goes to one of them."""
    await subject.store.put("code", "alice", 60)
    takers = [subject.store.take("code") for _ in range(RACERS)]
    results = await asyncio.gather(*takers)
    assert [r for r in results if r is not None] == ["alice"]


# --- Redis only: what lands on the server ------------------------------------------------

REDIS_IMPLEMENTATIONS = ("redis", "redis-aio")


@pytest.mark.redis
@pytest.mark.parametrize("subject", REDIS_IMPLEMENTATIONS, indirect=True)
async def test_keys_are_namespaced_and_always_expire(
    subject: Subject, raw_redis: redis.Redis
) -> None:
    assert subject.namespace is not None
    await subject.store.put("state-used:n1", "1", 60)
    await subject.store.put("state-used:n2", "1", 60, only_if_absent=True)
    await subject.store.put("app-token:sns", "tok", 7200)
    keys = sorted(raw_redis.scan_iter(match=f"{subject.namespace}*"))
    assert keys == [
        f"{subject.namespace}app-token:sns",
        f"{subject.namespace}state-used:n1",
        f"{subject.namespace}state-used:n2",
    ]
    assert raw_redis.get("state-used:n1") is None  # nothing outside the namespace
    for key in keys:
        assert 0 < raw_redis.pttl(key) <= 7_200_000, key


@pytest.mark.redis
@pytest.mark.parametrize("subject", REDIS_IMPLEMENTATIONS, indirect=True)
async def test_ttl_is_rounded_up_to_milliseconds(subject: Subject, raw_redis: redis.Redis) -> None:
    assert subject.namespace is not None
    await subject.store.put("fraction", "v", 1.2345)
    assert 1000 < raw_redis.pttl(f"{subject.namespace}fraction") <= 1235
    # A TTL below a millisecond (or none left at all) still sets a key that expires.
    assert await subject.store.put("tiny", "v", 0.0001) is True
    assert await subject.store.put("zero", "v", 0) is True
    await subject.wait_expired("tiny", 0.001)
    await subject.wait_expired("zero", 0.001)


async def test_a_batch_answers_each_operation_in_order(subject: Subject) -> None:
    """Keys on different Cluster slots ({a} and {b} hash apart): one batch still serves them."""
    await subject.store.put("{a}held", "old", 60)
    batch = subject.store.batch  # type: ignore[attr-defined]
    replies = await batch(
        [
            StoreGet("{a}held"),
            StorePut("{a}held", "new", 60, only_if_absent=True),
            StorePut("{b}fresh", "value", 60),
            StoreTake("{a}held"),
            StoreGet("{b}missing"),
            StoreDelete("{b}fresh"),
        ]
    )
    assert replies == ["old", False, True, "old", None, None]
    assert await subject.store.get("{a}held") is None
    assert await subject.store.get("{b}fresh") is None


async def test_a_batch_writes_expire_like_single_ones(subject: Subject) -> None:
    batch = subject.store.batch  # type: ignore[attr-defined]
    assert await batch([StorePut("short", "v", subject.short_ttl)]) == [True]
    assert await subject.store.get("short") == "v"
    await subject.wait_expired("short", subject.short_ttl)
