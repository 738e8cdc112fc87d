"""The in-memory store: a `cachetools.TLRUCache` (per-item expiry) behind a lock.

It never blocks for longer than a dict operation, so the async face simply
calls the sync one. It is per process: several instances need Redis.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from cachetools import TLRUCache

from . import BatchOp, StoreReply, apply

DEFAULT_MAXSIZE = 100_000


def _expires_at(key: str, value: tuple[str, float], now: float) -> float:
    return value[1]


class MemoryStore:
    def __init__(
        self, *, maxsize: int = DEFAULT_MAXSIZE, timer: Callable[[], float] = time.monotonic
    ) -> None:
        self._timer = timer
        self._data: TLRUCache[str, tuple[str, float]] = TLRUCache(
            maxsize=maxsize, ttu=_expires_at, timer=timer
        )
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self._lock:
            item = self._data.get(key)
        return item[0] if item is not None else None

    def put(self, key: str, value: str, ttl: float, *, only_if_absent: bool = False) -> bool:
        with self._lock:
            if only_if_absent and self._data.get(key) is not None:
                return False
            self._data[key] = (value, self._timer() + ttl)
            return True

    def take(self, key: str) -> str | None:
        with self._lock:
            item = self._data.pop(key, None)
        return item[0] if item is not None else None

    def delete(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)

    def batch(self, ops: Sequence[BatchOp]) -> list[StoreReply]:
        return [apply(self, op) for op in ops]

    def ping(self, within: float) -> None:
        """The process's own memory always answers."""

    def aio(self) -> AsyncMemoryStore:
        return AsyncMemoryStore(self)


class AsyncMemoryStore:
    """The same memory, with the async interface."""

    def __init__(self, store: MemoryStore) -> None:
        self.sync = store

    async def get(self, key: str) -> str | None:
        return self.sync.get(key)

    async def put(self, key: str, value: str, ttl: float, *, only_if_absent: bool = False) -> bool:
        return self.sync.put(key, value, ttl, only_if_absent=only_if_absent)

    async def take(self, key: str) -> str | None:
        return self.sync.take(key)

    async def delete(self, key: str) -> None:
        self.sync.delete(key)

    async def batch(self, ops: Sequence[BatchOp]) -> list[StoreReply]:
        return self.sync.batch(ops)

    async def ping(self, within: float) -> None:
        self.sync.ping(within)
