"""Shared state behind one small interface, in memory or in Redis (single, Sentinel, Cluster).

Keys are namespaced (`dingmw:` + purpose) and always expire. The operations
match the core's store effects: get, put (optionally only if absent), take
(get and delete atomically), delete, and ping (for `/dingtalk/readyz`). Every
operation names one key, so each one is a single Redis command on one key, and
a Redis Cluster serves them all without cross-slot keys.
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
