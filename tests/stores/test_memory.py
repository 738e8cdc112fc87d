"""The in-memory store (stores/memory.py): get/put/take/delete, per-item TTL, async face."""

from __future__ import annotations

import pytest

from dingmw.stores import open_stores
from dingmw.stores.memory import AsyncMemoryStore, MemoryStore


class Timer:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def timer() -> Timer:
    return Timer()


@pytest.fixture
def store(timer: Timer) -> MemoryStore:
    return MemoryStore(timer=timer)


def test_get_missing(store: MemoryStore) -> None:
    assert store.get("nope") is None


def test_put_then_get(store: MemoryStore) -> None:
    assert store.put("k", "v", 60) is True
    assert store.get("k") == "v"


def test_put_overwrites(store: MemoryStore) -> None:
    store.put("k", "v1", 60)
    assert store.put("k", "v2", 60) is True
    assert store.get("k") == "v2"


def test_only_if_absent(store: MemoryStore) -> None:
    assert store.put("k", "first", 60, only_if_absent=True) is True
    assert store.put("k", "second", 60, only_if_absent=True) is False
    assert store.get("k") == "first"


def test_only_if_absent_succeeds_after_expiry(store: MemoryStore, timer: Timer) -> None:
    store.put("k", "first", 10, only_if_absent=True)
    timer.now += 11
    assert store.put("k", "second", 10, only_if_absent=True) is True
    assert store.get("k") == "second"


def test_take_is_get_and_delete(store: MemoryStore) -> None:
    store.put("k", "v", 60)
    assert store.take("k") == "v"
    assert store.take("k") is None
    assert store.get("k") is None


def test_delete(store: MemoryStore) -> None:
    store.put("k", "v", 60)
    store.delete("k")
    assert store.get("k") is None
    store.delete("k")  # deleting a missing key is fine
    assert store.put("k", "again", 60, only_if_absent=True) is True


def test_keys_are_independent(store: MemoryStore) -> None:
    store.put("a", "1", 60)
    store.put("b", "2", 60)
    store.delete("a")
    assert store.get("b") == "2"


def test_per_item_ttl(store: MemoryStore, timer: Timer) -> None:
    store.put("short", "s", 10)
    store.put("long", "l", 100)
    timer.now += 9.9
    assert store.get("short") == "s"
    timer.now += 0.2
    assert store.get("short") is None
    assert store.take("short") is None
    assert store.get("long") == "l"
    timer.now += 90
    assert store.get("long") is None


def test_overwrite_resets_the_ttl(store: MemoryStore, timer: Timer) -> None:
    store.put("k", "v1", 10)
    timer.now += 8
    store.put("k", "v2", 10)
    timer.now += 8
    assert store.get("k") == "v2"


def test_maxsize_bounds_memory(timer: Timer) -> None:
    small = MemoryStore(maxsize=3, timer=timer)
    for index in range(10):
        small.put(f"k{index}", str(index), 60)
    assert sum(small.get(f"k{index}") is not None for index in range(10)) <= 3
    assert small.get("k9") == "9"


async def test_async_face_shares_the_memory(store: MemoryStore, timer: Timer) -> None:
    aio = store.aio()
    assert isinstance(aio, AsyncMemoryStore)
    assert await aio.put("k", "v", 10, only_if_absent=True) is True
    assert await aio.put("k", "w", 10, only_if_absent=True) is False
    assert store.get("k") == "v"
    assert await aio.get("k") == "v"
    assert await aio.take("k") == "v"
    assert await aio.take("k") is None
    await aio.put("d", "x", 10)
    await aio.delete("d")
    assert await aio.get("d") is None
    await aio.put("t", "x", 10)
    timer.now += 11
    assert await aio.get("t") is None


async def test_open_stores_memory_gives_one_memory_two_faces() -> None:
    sync, aio = open_stores("memory://")
    sync.put("k", "v", 60)
    assert await aio.get("k") == "v"
