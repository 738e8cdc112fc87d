"""Concurrent effects: `All`, `gather`/`both` (core/effects.py) and both drivers' pools.

Overlap is asserted by events, never by timing: a handler that waits until
its partner has started can only finish when the driver runs both at once,
so a sequential driver fails (after `WAIT`, a safety net) instead of passing
slowly.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from dingmw.core.drive import AsyncPool, AsyncRunner, SyncPool, SyncRunner
from dingmw.core.effects import (
    CALL_EXTENSION,
    All,
    Effect,
    Flow,
    Replies,
    Reply,
    StoreGet,
    both,
    gather,
    http,
    memo,
    store_get,
)
from dingmw.errors import LoginError, UpstreamError
from dingmw.stores.memory import MemoryStore

WAIT = 10.0  # seconds: only a safety net so a sequential driver fails instead of hanging


def call(path: str) -> httpx.Request:
    return httpx.Request("GET", f"https://oapi.example{path}", extensions={CALL_EXTENSION: path})


def fetch(path: str) -> Flow[str]:
    response = yield from http(call(path))
    return str(response.json()["path"])


def chain(*paths: str) -> Flow[list[str]]:
    """Dependent calls: each waits for the one before."""
    seen = []
    for path in paths:
        seen.append((yield from fetch(path)))
    return seen


# gather, as a pure generator (no driver) ---------------------------------------


def answer(effect: Effect) -> httpx.Response:
    assert isinstance(effect, httpx.Request)
    return httpx.Response(200, json={"path": effect.url.path})


def test_gather_yields_each_round_of_independent_effects_together() -> None:
    flow = gather(chain("/a1", "/a2"), fetch("/b"))
    first = next(flow)
    assert isinstance(first, All)
    assert [e.url.path for e in first.effects if isinstance(e, httpx.Request)] == ["/a1", "/b"]
    second = flow.send(Replies(tuple(answer(e) for e in first.effects)))
    # Only the chain is left: its next call comes alone, not wrapped in an All.
    assert isinstance(second, httpx.Request)
    assert second.url.path == "/a2"
    with pytest.raises(StopIteration) as stop:
        flow.send(answer(second))
    assert stop.value.value == [["/a1", "/a2"], "/b"]


def test_gather_throws_a_failed_effect_into_its_own_sub_flow() -> None:
    def tolerant() -> Flow[str]:
        try:
            yield from fetch("/flaky")
        except UpstreamError as exc:
            return f"caught {exc.call}"
        return "no error"

    flow = gather(tolerant(), fetch("/ok"))
    batch = next(flow)
    assert isinstance(batch, All)
    _, ok = batch.effects
    with pytest.raises(StopIteration) as stop:
        flow.send(Replies((UpstreamError("/flaky", "boom"), answer(ok))))
    assert stop.value.value == ["caught /flaky", "/ok"]


class Tracked:
    def __init__(self) -> None:
        self.closed = False

    def flow(self, *paths: str) -> Generator[Effect, Reply, list[str]]:
        try:
            return (yield from chain(*paths))
        finally:
            self.closed = True


def test_gather_raises_the_first_failure_in_order_and_closes_the_others() -> None:
    slow = Tracked()
    flow = gather(fetch("/first"), slow.flow("/second", "/third"), fetch("/last"))
    batch = next(flow)
    assert isinstance(batch, All)
    _, second, _ = batch.effects
    errors = (UpstreamError("/first", "x"), answer(second), UpstreamError("/last", "y"))
    with pytest.raises(UpstreamError) as raised:
        flow.send(Replies(errors))
    assert raised.value.call == "/first"
    assert slow.closed


def test_both_returns_both_values() -> None:
    def number() -> Flow[int]:
        yield from store_get("k")
        return 7

    flow = both(fetch("/x"), number())
    batch = next(flow)
    assert isinstance(batch, All)
    request, get = batch.effects
    assert isinstance(get, StoreGet)
    with pytest.raises(StopIteration) as stop:
        flow.send(Replies((answer(request), None)))
    assert stop.value.value == ("/x", 7)


def test_gather_of_flows_that_return_at_once_yields_nothing() -> None:
    def at_once() -> Flow[int]:
        return 1
        yield  # pragma: no cover - makes this a generator

    with pytest.raises(StopIteration) as stop:
        next(gather(at_once(), at_once()))
    assert stop.value.value == [1, 1]


# The drivers perform an All concurrently ---------------------------------------


class ThreadRendezvous:
    """`/a` and `/b` each wait until the other has arrived: only concurrent calls finish."""

    def __init__(self) -> None:
        self.barrier = threading.Barrier(2, timeout=WAIT)
        self.log: list[str] = []
        self.lock = threading.Lock()

    def handler(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        with self.lock:
            self.log.append(f"start {path}")
        if path in ("/a", "/b"):
            self.barrier.wait()
        with self.lock:
            self.log.append(f"end {path}")
        return httpx.Response(200, json={"path": path})


def test_sync_runner_performs_independent_calls_concurrently() -> None:
    meeting = ThreadRendezvous()
    runner = SyncRunner(httpx.Client(transport=httpx.MockTransport(meeting.handler)), MemoryStore())
    assert runner.run(gather(chain("/a", "/after-a"), fetch("/b"))) == [["/a", "/after-a"], "/b"]
    # Both were in flight before either ended; the dependent call came after its parent.
    assert set(meeting.log[:2]) == {"start /a", "start /b"}
    assert meeting.log.index("start /after-a") > meeting.log.index("end /a")


class TaskRendezvous:
    def __init__(self) -> None:
        self.arrived: set[str] = set()
        self.both_here = asyncio.Event()
        self.log: list[str] = []

    async def handler(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.log.append(f"start {path}")
        if path in ("/a", "/b"):
            self.arrived.add(path)
            if self.arrived == {"/a", "/b"}:
                self.both_here.set()
            await asyncio.wait_for(self.both_here.wait(), WAIT)
        self.log.append(f"end {path}")
        return httpx.Response(200, json={"path": path})


async def test_async_runner_performs_independent_calls_concurrently() -> None:
    meeting = TaskRendezvous()
    runner = AsyncRunner(
        httpx.AsyncClient(transport=httpx.MockTransport(meeting.handler)), MemoryStore().aio()
    )
    result = await runner.run(gather(chain("/a", "/after-a"), fetch("/b")))
    assert result == [["/a", "/after-a"], "/b"]
    assert set(meeting.log[:2]) == {"start /a", "start /b"}
    assert meeting.log.index("start /after-a") > meeting.log.index("end /a")


def failing_b(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/b":
        raise httpx.ConnectError("refused", request=request)
    return httpx.Response(200, json={"path": request.url.path})


def catching_b() -> Flow[str]:
    try:
        return (yield from fetch("/b"))
    except UpstreamError as exc:
        return f"{exc.reason} in {exc.call}"


def test_sync_network_failure_is_thrown_into_the_sub_flow_that_made_the_call() -> None:
    runner = SyncRunner(httpx.Client(transport=httpx.MockTransport(failing_b)), MemoryStore())
    assert runner.run(gather(fetch("/a"), catching_b())) == ["/a", "upstream in /b"]


async def test_async_network_failure_is_thrown_into_the_sub_flow_that_made_the_call() -> None:
    runner = AsyncRunner(
        httpx.AsyncClient(transport=httpx.MockTransport(failing_b)), MemoryStore().aio()
    )
    assert await runner.run(gather(fetch("/a"), catching_b())) == ["/a", "upstream in /b"]


async def test_async_uncaught_failure_propagates_out_of_run() -> None:
    runner = AsyncRunner(
        httpx.AsyncClient(transport=httpx.MockTransport(failing_b)), MemoryStore().aio()
    )
    with pytest.raises(UpstreamError) as raised:
        await runner.run(gather(fetch("/a"), fetch("/b")))
    assert raised.value.call == "/b"


async def test_cancelling_the_request_cancels_every_call_in_flight() -> None:
    started: set[str] = set()
    cancelled: set[str] = set()
    both_started = asyncio.Event()

    async def never(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        started.add(path)
        if len(started) == 2:
            both_started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.add(path)
            raise
        raise AssertionError("unreachable")

    tracked = Tracked()
    runner = AsyncRunner(
        httpx.AsyncClient(transport=httpx.MockTransport(never)), MemoryStore().aio()
    )
    task = asyncio.create_task(runner.run(gather(tracked.flow("/a"), fetch("/b"))))
    await asyncio.wait_for(both_started.wait(), WAIT)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cancelled == {"/a", "/b"}
    assert tracked.closed


async def test_a_bug_in_one_call_cancels_the_others_and_is_raised_as_itself() -> None:
    b_started = asyncio.Event()
    cancelled: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/b":
            b_started.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.append("/b")
                raise
        await asyncio.wait_for(b_started.wait(), WAIT)
        raise RuntimeError("a bug")

    runner = AsyncRunner(
        httpx.AsyncClient(transport=httpx.MockTransport(handler)), MemoryStore().aio()
    )
    with pytest.raises(RuntimeError, match="a bug"):
        await runner.run(gather(fetch("/a"), fetch("/b")))
    assert cancelled == ["/b"]


def token_fetch() -> Flow[tuple[str, float]]:
    path = yield from fetch("/a")
    return f"token{path}", 60.0


def test_a_memo_runs_beside_a_call() -> None:
    """A cold app token is fetched while the user's call is in flight (enrichment's case)."""
    meeting = ThreadRendezvous()
    store = MemoryStore()
    runner = SyncRunner(httpx.Client(transport=httpx.MockTransport(meeting.handler)), store)
    assert runner.run(both(memo("tok", token_fetch), fetch("/b"))) == ("token/a", "/b")
    assert store.get("tok") == "token/a"


async def test_a_memo_runs_beside_a_call_async() -> None:
    meeting = TaskRendezvous()
    store = MemoryStore()
    runner = AsyncRunner(
        httpx.AsyncClient(transport=httpx.MockTransport(meeting.handler)), store.aio()
    )
    assert await runner.run(both(memo("tok", token_fetch), fetch("/b"))) == ("token/a", "/b")
    assert store.get("tok") == "token/a"


# The sync pool is bounded and never deadlocks ---------------------------------------


def test_sync_pool_with_every_worker_busy_performs_the_batch_itself() -> None:
    pool = SyncPool(workers=1)
    release = threading.Event()
    busy = pool.executor().submit(release.wait, WAIT)  # the only worker is taken
    try:
        threads: list[str] = []

        def work(item: int) -> int:
            threads.append(threading.current_thread().name)
            return item * 2

        assert pool.map(work, [1, 2, 3]) == [2, 4, 6]
        assert set(threads) == {threading.current_thread().name}
    finally:
        release.set()
        busy.result(WAIT)


def test_sync_pool_nested_batches_on_a_tiny_pool_finish() -> None:
    """Batches inside batches (a memo's fetch inside an All), many callers, one worker."""
    pool = SyncPool(workers=1)

    def inner(item: int) -> int:
        return sum(pool.map(lambda x: x + item, [1, 2, 3]))

    with ThreadPoolExecutor(4) as callers:
        futures = [callers.submit(pool.map, inner, [0, 10, 20]) for _ in range(8)]
        assert [f.result(WAIT) for f in futures] == [[6, 36, 66]] * 8


def test_sync_pool_is_remade_in_a_forked_child(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    pool = SyncPool(workers=2)
    parent = pool.executor()
    assert pool.executor() is parent
    monkeypatch.setattr(os, "getpid", lambda: -1)  # as if in a pre-forked worker
    assert pool.executor() is not parent
    parent.shutdown()


async def test_async_pool_keeps_the_order_of_the_batch() -> None:
    gate = asyncio.Event()

    async def work(item: int) -> int:
        if item == 1:
            await gate.wait()  # the first finishes last
        else:
            gate.set()
        return item

    assert await AsyncPool().map(work, [1, 2, 3]) == [1, 2, 3]


def test_all_answers_login_errors_in_place() -> None:
    runner = SyncRunner(httpx.Client(transport=httpx.MockTransport(failing_b)), MemoryStore())
    reply: Any = runner.perform(All((call("/a"), call("/b"))))
    assert isinstance(reply, Replies)
    ok, failed = reply.items
    assert isinstance(ok, httpx.Response)
    assert isinstance(failed, LoginError)
