"""Shared state behind one small interface, in memory or in Redis (single, Sentinel, Cluster).

Keys are namespaced (`dingmw:` + purpose) and always expire. The operations
match the core's store effects: get, put (optionally only if absent), take
(get and delete atomically), delete, and ping (for `/dingtalk/readyz`). Every
operation names one key, so each one is a single Redis command on one key, and
a Redis Cluster serves them all without cross-slot keys.

A store may also offer `batch(ops)`: several independent operations (the
core's own store effects: `StoreGet`, `StorePut`, `StoreTake`, `StoreDelete`)
in one round trip (a Redis pipeline; not a transaction), answered in order,
or a `StoreError` for the whole batch. The drivers use it, when a store has
it, for a flow's independent store operations (an `All` of them); a store
without it gets them one by one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeAlias

from ..core.effects import StoreDelete, StoreGet, StorePut, StoreTake

BatchOp: TypeAlias = StoreGet | StorePut | StoreTake | StoreDelete
StoreReply = str | bool | None


def apply(store: Store, op: BatchOp) -> StoreReply:
    """`op` on `store`, by its method of the same name (a batch done one by one)."""
    if isinstance(op, StoreGet):
        return store.get(op.key)
    if isinstance(op, StorePut):
        return store.put(op.key, op.value, op.ttl, only_if_absent=op.only_if_absent)
    if isinstance(op, StoreTake):
        return store.take(op.key)
    store.delete(op.key)
    return None


class BatchStore(Protocol):
    def batch(self, ops: Sequence[BatchOp]) -> list[StoreReply]: ...


class AsyncBatchStore(Protocol):
    async def batch(self, ops: Sequence[BatchOp]) -> list[StoreReply]: ...


class Store(Protocol):
    """A synchronous store (the WSGI driver's)."""

    def get(self, key: str) -> str | None: ...

    def put(self, key: str, value: str, ttl: float, *, only_if_absent: bool = False) -> bool: ...

    def take(self, key: str) -> str | None: ...

    def delete(self, key: str) -> None: ...

    def ping(self, within: float) -> None:
        """Raise `StoreError` unless the store answers within `within` seconds."""


class AsyncStore(Protocol):
    """An asynchronous store (the ASGI driver's)."""

    async def get(self, key: str) -> str | None: ...

    async def put(
        self, key: str, value: str, ttl: float, *, only_if_absent: bool = False
    ) -> bool: ...

    async def take(self, key: str) -> str | None: ...

    async def delete(self, key: str) -> None: ...

    async def ping(self, within: float) -> None:
        """Raise `StoreError` unless the store answers within `within` seconds."""


def open_stores(url: str) -> tuple[Store, AsyncStore]:
    """The (sync, async) pair of stores for `DINGMW_STORE_URL`."""
    from ..errors import ConfigError
    from .memory import MemoryStore
    from .urls import BadStoreURL, parse_store_url

    try:
        parsed = parse_store_url(url)
    except BadStoreURL as exc:
        raise ConfigError(f"DINGMW_STORE_URL {exc}") from None
    if parsed.kind == "memory":
        memory = MemoryStore()
        return memory, memory.aio()
    try:
        from .redis import AsyncRedisStore, RedisStore
    except ImportError as exc:
        if exc.name is None or exc.name.partition(".")[0] != "redis":
            raise
        scheme = url.partition("://")[0]
        raise ConfigError(
            f"DINGMW_STORE_URL={scheme}://... needs the redis package: pip install 'dingmw[redis]'"
        ) from None
    return RedisStore(url), AsyncRedisStore(url)
