"""The two drivers: the only code that performs a flow's effects.

`run_sync` (WSGI: `httpx.Client`, a sync store) and `run_async` (ASGI and
the hub: `httpx.AsyncClient`, an async store) do the same five things and
differ only by `await`; a test compares their syntax trees to keep it so:

1. prime the flow with `send(None)` inside the `try` (many flows return at once);
2. perform each effect and send the reply back in;
3. turn a network or store failure into a `LoginError` thrown into the flow;
4. return the flow's value on `StopIteration`;
5. close the flow in `finally`.

`Memo` effects are answered from the store, or by running their fetch
sub-flow once per key and process while other requests for the key wait
(single flight), then storing the value for its lifetime.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, Protocol, TypeVar

import httpx

from ..errors import LoginError, UpstreamError
from ..stores import AsyncStore, Store
from .effects import CALL_EXTENSION, Flow, Memo, Reply, StoreDelete, StoreGet, StorePut, StoreTake

T = TypeVar("T")
L = TypeVar("L", threading.Lock, asyncio.Lock)


def network_error(request: httpx.Request, exc: httpx.HTTPError) -> UpstreamError:
    call = str(request.extensions.get(CALL_EXTENSION) or request.url.path)
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamError(call, "timed out", reason="upstream_timeout")
    return UpstreamError(call, f"network error ({type(exc).__name__})")


class KeyedLocks(Generic[L]):
    """One lock per key, alive only while someone holds or waits for it.

    `scope` separates users that must not share a lock: an `asyncio.Lock`
    belongs to one event loop, and a process may run several (a test client
    per thread), so the async locks are scoped by the running loop.
    """

    def __init__(self, factory: Callable[[], L], scope: Callable[[], int] = lambda: 0) -> None:
        self._factory: Callable[[], L] = factory
        self._scope = scope
        self._locks: dict[tuple[int, str], tuple[L, int]] = {}
        self._guard = threading.Lock()

    @contextmanager
    def ref(self, key: str) -> Iterator[L]:
        slot = (self._scope(), key)
        with self._guard:
            lock, count = self._locks.get(slot) or (self._factory(), 0)
            self._locks[slot] = (lock, count + 1)
        try:
            yield lock
        finally:
            with self._guard:
                lock, count = self._locks[slot]
                if count == 1:
                    del self._locks[slot]
                else:
                    self._locks[slot] = (lock, count - 1)


class SyncSender(Protocol):
    """What the sync driver sends requests with: an `httpx.Client` or a pool of them."""

    def send(self, request: httpx.Request) -> httpx.Response: ...


class AsyncSender(Protocol):
    """What the async driver sends requests with: an `httpx.AsyncClient` or a pool."""

    async def send(self, request: httpx.Request) -> httpx.Response: ...


# Single flight is per process: every runner (one per request) shares these.
SYNC_LOCKS: KeyedLocks[threading.Lock] = KeyedLocks(threading.Lock)
ASYNC_LOCKS: KeyedLocks[asyncio.Lock] = KeyedLocks(
    asyncio.Lock, scope=lambda: id(asyncio.get_running_loop())
)


class SyncRunner:
    def __init__(
        self, client: SyncSender, store: Store, locks: KeyedLocks[threading.Lock] = SYNC_LOCKS
    ) -> None:
        self.client = client
        self.store = store
        self.locks = locks

    def run(self, flow: Flow[T]) -> T:
        try:
            effect = flow.send(None)
            while True:
                try:
                    reply = self.perform(effect)
                except LoginError as exc:
                    effect = flow.throw(exc)
                else:
                    effect = flow.send(reply)
        except StopIteration as stop:
            result: T = stop.value
            return result
        finally:
            flow.close()

    def perform(self, effect: object) -> Reply:
        if isinstance(effect, httpx.Request):
            try:
                return self.client.send(effect)
            except httpx.HTTPError as exc:
                raise network_error(effect, exc) from None
        if isinstance(effect, StoreGet):
            return self.store.get(effect.key)
        if isinstance(effect, StorePut):
            return self.store.put(
                effect.key, effect.value, effect.ttl, only_if_absent=effect.only_if_absent
            )
        if isinstance(effect, StoreTake):
            return self.store.take(effect.key)
        if isinstance(effect, StoreDelete):
            self.store.delete(effect.key)
            return None
        if isinstance(effect, Memo):
            return self.memo(effect)
        raise TypeError(f"unknown effect {effect!r}")

    def memo(self, effect: Memo) -> str:
        cached = self.store.get(effect.key)
        if cached is not None:
            return cached
        with self.locks.ref(effect.key) as lock, lock:
            cached = self.store.get(effect.key)
            if cached is not None:
                return cached
            value, ttl = self.run(effect.fetch())
            self.store.put(effect.key, value, ttl)
            return value


class AsyncRunner:
    def __init__(
        self,
        client: AsyncSender,
        store: AsyncStore,
        locks: KeyedLocks[asyncio.Lock] = ASYNC_LOCKS,
    ) -> None:
        self.client = client
        self.store = store
        self.locks = locks

    async def run(self, flow: Flow[T]) -> T:
        try:
            effect = flow.send(None)
            while True:
                try:
                    reply = await self.perform(effect)
                except LoginError as exc:
                    effect = flow.throw(exc)
                else:
                    effect = flow.send(reply)
        except StopIteration as stop:
            result: T = stop.value
            return result
        finally:
            flow.close()

    async def perform(self, effect: object) -> Reply:
        if isinstance(effect, httpx.Request):
            try:
                return await self.client.send(effect)
            except httpx.HTTPError as exc:
                raise network_error(effect, exc) from None
        if isinstance(effect, StoreGet):
            return await self.store.get(effect.key)
        if isinstance(effect, StorePut):
            return await self.store.put(
                effect.key, effect.value, effect.ttl, only_if_absent=effect.only_if_absent
            )
        if isinstance(effect, StoreTake):
            return await self.store.take(effect.key)
        if isinstance(effect, StoreDelete):
            await self.store.delete(effect.key)
            return None
        if isinstance(effect, Memo):
            return await self.memo(effect)
        raise TypeError(f"unknown effect {effect!r}")

    async def memo(self, effect: Memo) -> str:
        cached = await self.store.get(effect.key)
        if cached is not None:
            return cached
        with self.locks.ref(effect.key) as lock:
            async with lock:
                cached = await self.store.get(effect.key)
                if cached is not None:
                    return cached
                value, ttl = await self.run(effect.fetch())
                await self.store.put(effect.key, value, ttl)
                return value
