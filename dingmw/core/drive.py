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

`All` effects are performed concurrently and answered with `Replies` (a
failed effect's `LoginError` in its place). An `All` of store operations
only goes to the store as one batch when the store has `batch` (Redis: one
pipeline, one round trip); any other `All` goes to a pool each driver has:

* async (`AsyncPool`): one task per effect in an `asyncio.TaskGroup`, so a
  cancelled request (the browser went away) cancels every call in flight;
* sync (`SyncPool`): the calling thread performs the first effect, a small
  bounded thread pool the others (`SYNC_WORKERS` per process). A caller
  takes back any effect no worker has started yet and performs it itself,
  so a busy pool slows a batch down to sequential, never deadlocks it.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import threading
from collections.abc import Callable, Coroutine, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Generic, Protocol, TypeVar

import httpx

from .. import observe
from ..errors import LoginError, StoreError, UpstreamError
from ..stores import AsyncStore, BatchOp, Store, StoreReply
from .effects import (
    CALL_EXTENSION,
    All,
    Effect,
    Flow,
    Memo,
    Replies,
    Reply,
    StoreDelete,
    StoreGet,
    StorePing,
    StorePut,
    StoreTake,
)

T = TypeVar("T")
E = TypeVar("E")
R = TypeVar("R")
L = TypeVar("L", threading.Lock, asyncio.Lock)


def network_error(request: httpx.Request, exc: httpx.HTTPError) -> UpstreamError:
    call = str(request.extensions.get(CALL_EXTENSION) or request.url.path)
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamError(call, "timed out", reason="upstream_timeout")
    return UpstreamError(call, f"network error ({type(exc).__name__})")


_BATCHED = (StoreGet, StorePut, StoreTake, StoreDelete)


def store_ops(effect: All) -> list[BatchOp] | None:
    """`effect`'s operations as one store batch, or None unless all are get/put/take/delete."""
    ops: list[BatchOp] = []
    for item in effect.effects:
        if not isinstance(item, _BATCHED):
            return None
        ops.append(item)
    return ops


def batch_of(store: object, effect: All) -> tuple[Any, list[BatchOp]] | None:
    """The store's `batch` method and `effect`'s operations, when both exist."""
    method = getattr(store, "batch", None)
    if method is None:
        return None
    ops = store_ops(effect)
    return None if ops is None else (method, ops)


def batch_replies(replies: list[StoreReply] | StoreError, count: int) -> Replies:
    """A batch's answer to its `All`: its replies, or its failure for every operation."""
    if isinstance(replies, StoreError):
        return Replies((replies,) * count)
    return Replies(tuple(replies))


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


# Threads per process for the sync driver's concurrent calls: a login makes at
# most two independent calls at once, so this serves several logins at a time.
SYNC_WORKERS = 16


class SyncPool:
    """Performs a batch on the calling thread and a bounded thread pool (made after a fork)."""

    def __init__(self, workers: int = SYNC_WORKERS) -> None:
        self._workers = workers
        self._executor: ThreadPoolExecutor | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def executor(self) -> ThreadPoolExecutor:
        executor = self._executor
        if executor is None or self._pid != os.getpid():
            with self._lock:
                executor = self._executor
                if executor is None or self._pid != os.getpid():
                    executor = ThreadPoolExecutor(self._workers, thread_name_prefix="dingmw-calls")
                    self._executor, self._pid = executor, os.getpid()
        return executor

    def map(self, fn: Callable[[E], R], items: Sequence[E]) -> list[R]:
        if len(items) < 2:
            return [fn(item) for item in items]
        executor = self.executor()
        rest = [
            (item, executor.submit(contextvars.copy_context().run, fn, item)) for item in items[1:]
        ]
        try:
            results = [fn(items[0])]
            for item, future in rest:
                # Not started yet: perform it here rather than wait for a free worker.
                results.append(fn(item) if future.cancel() else future.result())
            return results
        finally:
            for _, future in rest:
                future.cancel()


class AsyncPool:
    """Performs a batch as the tasks of one `asyncio.TaskGroup`."""

    async def map(self, fn: Callable[[E], Coroutine[Any, Any, R]], items: Sequence[E]) -> list[R]:
        if len(items) < 2:
            return [await fn(item) for item in items]
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(fn(item)) for item in items]
        except BaseExceptionGroup as failed:
            # Only a bug gets here (a `LoginError` is a reply): raise it as itself.
            raise failed.exceptions[0] from None
        return [task.result() for task in tasks]


# Per process: every runner (one per request) shares the pools and the
# single-flight locks.
SYNC_POOL = SyncPool()
ASYNC_POOL = AsyncPool()
SYNC_LOCKS: KeyedLocks[threading.Lock] = KeyedLocks(threading.Lock)
ASYNC_LOCKS: KeyedLocks[asyncio.Lock] = KeyedLocks(
    asyncio.Lock, scope=lambda: id(asyncio.get_running_loop())
)


class SyncRunner:
    def __init__(
        self,
        client: SyncSender,
        store: Store,
        locks: KeyedLocks[threading.Lock] = SYNC_LOCKS,
        pool: SyncPool = SYNC_POOL,
    ) -> None:
        self.client = client
        self.store = store
        self.locks = locks
        self.pool = pool

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
                with observe.dingtalk_call(effect) as call:
                    return call.done(self.client.send(effect))
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
        if isinstance(effect, StorePing):
            self.store.ping(effect.timeout)
            return True
        if isinstance(effect, Memo):
            return self.memo(effect)
        if isinstance(effect, All):
            batch = batch_of(self.store, effect)
            if batch is not None:
                return self.batch(*batch)
            return Replies(tuple(self.pool.map(self.attempt, effect.effects)))
        raise TypeError(f"unknown effect {effect!r}")

    def batch(self, method: Any, ops: list[BatchOp]) -> Replies:
        """Independent store operations in one round trip (the store's `batch`)."""
        try:
            replies: list[StoreReply] | StoreError = method(ops)
        except StoreError as exc:
            replies = exc
        return batch_replies(replies, len(ops))

    def attempt(self, effect: Effect) -> Reply | LoginError:
        """One effect of an `All`: its reply, or the `LoginError` it failed with."""
        try:
            return self.perform(effect)
        except LoginError as exc:
            return exc

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
        pool: AsyncPool = ASYNC_POOL,
    ) -> None:
        self.client = client
        self.store = store
        self.locks = locks
        self.pool = pool

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
                with observe.dingtalk_call(effect) as call:
                    return call.done(await self.client.send(effect))
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
        if isinstance(effect, StorePing):
            await self.store.ping(effect.timeout)
            return True
        if isinstance(effect, Memo):
            return await self.memo(effect)
        if isinstance(effect, All):
            batch = batch_of(self.store, effect)
            if batch is not None:
                return await self.batch(*batch)
            return Replies(tuple(await self.pool.map(self.attempt, effect.effects)))
        raise TypeError(f"unknown effect {effect!r}")

    async def batch(self, method: Any, ops: list[BatchOp]) -> Replies:
        """Independent store operations in one round trip (the store's `batch`)."""
        try:
            replies: list[StoreReply] | StoreError = await method(ops)
        except StoreError as exc:
            replies = exc
        return batch_replies(replies, len(ops))

    async def attempt(self, effect: Effect) -> Reply | LoginError:
        """One effect of an `All`: its reply, or the `LoginError` it failed with."""
        try:
            return await self.perform(effect)
        except LoginError as exc:
            return exc

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
