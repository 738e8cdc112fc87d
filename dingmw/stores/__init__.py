"""Shared state behind one small interface, in memory or in Redis.

Keys are namespaced (`dingmw:` + purpose) and always expire. The operations
match the core's store effects: get, put (optionally only if absent), take
(get and delete atomically), delete, and ping (for `/dingtalk/readyz`).
"""

from __future__ import annotations

from typing import Protocol


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

    if url.startswith("memory://"):
        memory = MemoryStore()
        return memory, memory.aio()
    if url.startswith(("redis://", "rediss://", "unix://")):
        try:
            from .redis import AsyncRedisStore, RedisStore
        except ImportError as exc:
            if exc.name is None or exc.name.partition(".")[0] != "redis":
                raise
            raise ConfigError(
                "DINGMW_STORE_URL=redis://... needs the redis package: pip install 'dingmw[redis]'"
            ) from None
        return RedisStore(url), AsyncRedisStore(url)
    raise ConfigError("DINGMW_STORE_URL must be memory:// or redis://host:port/db")
