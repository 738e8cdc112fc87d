"""The drivers (core/drive.py): the only code that performs effects.

Both runners are exercised with the same small flows, an `httpx.MockTransport`
and a `MemoryStore`; their syntax trees are compared once `await` is removed.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import threading
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from dingmw.core import drive
from dingmw.core.drive import AsyncRunner, SyncRunner
from dingmw.core.effects import (
    CALL_EXTENSION,
    Effect,
    Flow,
    Reply,
    StorePut,
    gather,
    http,
    memo,
    store_delete,
    store_get,
    store_put,
    store_take,
)
from dingmw.errors import StoreError, UpstreamError
from dingmw.stores.memory import AsyncMemoryStore, MemoryStore

from ..support import command_of

URL = "https://oapi.example/thing"
WAIT = 10.0  # seconds: only a safety net so a broken lock fails instead of hanging


def tagged(call: str | None = "test/call") -> httpx.Request:
    extensions = {CALL_EXTENSION: call} if call else {}
    return httpx.Request("GET", URL, extensions=extensions)


def ok_handler(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"path": request.url.path})


def sync_runner(
    handler: Callable[[httpx.Request], httpx.Response] = ok_handler,
    store: MemoryStore | None = None,
) -> SyncRunner:
    return SyncRunner(httpx.Client(transport=httpx.MockTransport(handler)), store or MemoryStore())


def async_runner(handler: Any = ok_handler, store: MemoryStore | None = None) -> AsyncRunner:
    return AsyncRunner(
        httpx.AsyncClient(transport=httpx.MockTransport(handler)), (store or MemoryStore()).aio()
    )


# Small flows -----------------------------------------------------------------


def store_flow() -> Flow[list[object]]:
    seen: list[object] = []
    seen.append((yield from store_put("k", "v1", 60)))
    seen.append((yield from store_put("k", "v2", 60, only_if_absent=True)))
    seen.append((yield from store_get("k")))
    seen.append((yield from store_take("k")))
    seen.append((yield from store_take("k")))
    yield from store_put("gone", "x", 60)
    yield from store_delete("gone")
    seen.append((yield from store_get("gone")))
    response = yield from http(tagged())
    seen.append(response.json())
    return seen


EXPECTED = [True, False, "v1", "v1", None, None, {"path": "/thing"}]


def test_sync_runner_performs_effects() -> None:
    assert sync_runner().run(store_flow()) == EXPECTED


async def test_async_runner_performs_effects() -> None:
    assert await async_runner().run(store_flow()) == EXPECTED


def returns_at_once() -> Flow[str]:
    return "done"
    yield  # pragma: no cover - makes this a generator


def test_flows_that_return_at_once() -> None:
    assert sync_runner().run(returns_at_once()) == "done"


async def test_flows_that_return_at_once_async() -> None:
    assert await async_runner().run(returns_at_once()) == "done"


# Memo ------------------------------------------------------------------------


class Fetches:
    def __init__(self) -> None:
        self.count = 0

    def fetch(self) -> Flow[tuple[str, float]]:
        self.count += 1
        response = yield from http(tagged("token/fetch"))
        return str(response.json()["token"]), 100.0


def token_handler(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"token": "tok"})


def memo_flow(fetches: Fetches) -> Flow[str]:
    value = yield from memo("app-token", fetches.fetch)
    return value


def test_memo_fetches_once_then_reads_the_store() -> None:
    store = MemoryStore()
    fetches = Fetches()
    runner = sync_runner(token_handler, store)
    assert runner.run(memo_flow(fetches)) == "tok"
    assert store.get("app-token") == "tok"
    assert runner.run(memo_flow(fetches)) == "tok"
    assert sync_runner(token_handler, store).run(memo_flow(fetches)) == "tok"
    assert fetches.count == 1


async def test_memo_fetches_once_then_reads_the_store_async() -> None:
    store = MemoryStore()
    fetches = Fetches()
    assert await async_runner(token_handler, store).run(memo_flow(fetches)) == "tok"
    assert await async_runner(token_handler, store).run(memo_flow(fetches)) == "tok"
    assert fetches.count == 1


def test_memo_value_expires_with_its_ttl() -> None:
    now = [0.0]
    store = MemoryStore(timer=lambda: now[0])
    fetches = Fetches()
    sync_runner(token_handler, store).run(memo_flow(fetches))
    now[0] = 99.0
    sync_runner(token_handler, store).run(memo_flow(fetches))
    assert fetches.count == 1
    now[0] = 101.0
    sync_runner(token_handler, store).run(memo_flow(fetches))
    assert fetches.count == 2


def test_memo_fetch_failure_is_thrown_into_the_flow_and_nothing_is_stored() -> None:
    store = MemoryStore()

    def failing(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    def flow() -> Flow[str]:
        try:
            yield from memo("app-token", Fetches().fetch)
        except UpstreamError as exc:
            return exc.call
        return "no error"

    assert sync_runner(failing, store).run(flow()) == "token/fetch"
    assert store.get("app-token") is None


class CountingStore(MemoryStore):
    """Counts lookups that found nothing, so a test can wait until every flow has looked."""

    def __init__(self) -> None:
        super().__init__()
        self.misses = 0
        self.changed = threading.Condition()

    def get(self, key: str) -> str | None:
        value = super().get(key)
        if value is None:
            with self.changed:
                self.misses += 1
                self.changed.notify_all()
        return value


N = 8


def test_single_flight_sync_one_runner() -> None:
    """N threads of one runner miss the cache at once; the fetch runs once."""
    store = CountingStore()
    fetching = threading.Event()
    release = threading.Event()
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        fetching.set()
        assert release.wait(WAIT)
        return httpx.Response(200, json={"token": "tok"})

    runner = sync_runner(handler, store)
    with ThreadPoolExecutor(N) as pool:
        futures = [pool.submit(runner.run, memo_flow(Fetches())) for _ in range(N)]
        assert fetching.wait(WAIT)
        # Every flow has looked in the store and found nothing (the leader twice).
        with store.changed:
            assert store.changed.wait_for(lambda: store.misses >= N + 1, WAIT)
        release.set()
        results = [f.result(WAIT) for f in futures]
    assert results == ["tok"] * N
    assert len(calls) == 1


def test_single_flight_sync_across_requests() -> None:
    """Each request gets its own runner (as `WSGIMiddleware.exchange` builds one per request),
    sharing the client and the store: the fetch must still run once per key and process."""
    store = CountingStore()
    fetching = threading.Event()
    release = threading.Event()
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        fetching.set()
        assert release.wait(WAIT)
        return httpx.Response(200, json={"token": "tok"})

    client = httpx.Client(transport=httpx.MockTransport(handler))
    with ThreadPoolExecutor(N) as pool:
        futures = [
            pool.submit(SyncRunner(client, store).run, memo_flow(Fetches())) for _ in range(N)
        ]
        assert fetching.wait(WAIT)
        with store.changed:
            assert store.changed.wait_for(lambda: store.misses >= N + 1, WAIT)
        release.set()
        results = [f.result(WAIT) for f in futures]
    assert results == ["tok"] * N
    assert len(calls) == 1


class AsyncCounting:
    """Wraps the async face of a store; sets `all_missed` after `target` empty lookups."""

    def __init__(self, target: int) -> None:
        self.inner: AsyncMemoryStore = MemoryStore().aio()
        self.misses = 0
        self.target = target
        self.all_missed = asyncio.Event()

    async def get(self, key: str) -> str | None:
        value = await self.inner.get(key)
        if value is None:
            self.misses += 1
            if self.misses >= self.target:
                self.all_missed.set()
        return value

    async def put(self, key: str, value: str, ttl: float, *, only_if_absent: bool = False) -> bool:
        return await self.inner.put(key, value, ttl, only_if_absent=only_if_absent)

    async def take(self, key: str) -> str | None:
        return await self.inner.take(key)

    async def delete(self, key: str) -> None:
        await self.inner.delete(key)

    async def ping(self, within: float) -> None:
        await self.inner.ping(within)


async def run_concurrent_memos(
    runner_for: Callable[[], AsyncRunner], store: AsyncCounting, release: asyncio.Event
) -> list[str]:
    tasks = [asyncio.create_task(runner_for().run(memo_flow(Fetches()))) for _ in range(N)]
    await asyncio.wait_for(store.all_missed.wait(), WAIT)
    release.set()
    return list(await asyncio.wait_for(asyncio.gather(*tasks), WAIT))


async def test_single_flight_async_one_runner() -> None:
    store = AsyncCounting(N + 1)
    release = asyncio.Event()
    calls: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        await release.wait()
        return httpx.Response(200, json={"token": "tok"})

    runner = AsyncRunner(httpx.AsyncClient(transport=httpx.MockTransport(handler)), store)
    assert await run_concurrent_memos(lambda: runner, store, release) == ["tok"] * N
    assert len(calls) == 1


async def test_single_flight_async_across_requests() -> None:
    """As `ASGIMiddleware.exchange` does: a new runner per request, one shared store."""
    store = AsyncCounting(N + 1)
    release = asyncio.Event()
    calls: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        await release.wait()
        return httpx.Response(200, json={"token": "tok"})

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    results = await run_concurrent_memos(lambda: AsyncRunner(client, store), store, release)
    assert results == ["tok"] * N
    assert len(calls) == 1


# Network failures --------------------------------------------------------------


def catching(request: httpx.Request) -> Flow[tuple[str, str, str]]:
    try:
        yield from http(request)
    except UpstreamError as exc:
        return exc.call, exc.reason, exc.detail
    return "", "", "no error"


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (httpx.ConnectError, "upstream"),
        (httpx.ReadTimeout, "upstream_timeout"),
        (httpx.ConnectTimeout, "upstream_timeout"),
        (httpx.RemoteProtocolError, "upstream"),
    ],
)
def test_transport_errors_become_upstream_errors_naming_the_call(
    error: type[httpx.TransportError], reason: str
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error("boom", request=request)

    call, got_reason, detail = sync_runner(handler).run(catching(tagged("sns/gettoken")))
    assert (call, got_reason) == ("sns/gettoken", reason)
    assert detail


@pytest.mark.parametrize(
    ("error", "reason"),
    [(httpx.ConnectError, "upstream"), (httpx.ReadTimeout, "upstream_timeout")],
)
async def test_transport_errors_become_upstream_errors_naming_the_call_async(
    error: type[httpx.TransportError], reason: str
) -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        raise error("boom", request=request)

    call, got_reason, _ = await async_runner(handler).run(catching(tagged("sns/gettoken")))
    assert (call, got_reason) == ("sns/gettoken", reason)


def test_untagged_request_is_named_by_its_path() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("boom", request=request)

    call, _, _ = sync_runner(handler).run(catching(tagged(None)))
    assert call == "/thing"


def test_uncaught_upstream_error_propagates_out_of_run() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("boom", request=request)

    def flow() -> Flow[None]:
        yield from http(tagged())

    with pytest.raises(UpstreamError):
        sync_runner(handler).run(flow())


class BrokenStore(MemoryStore):
    def __init__(self, exc: Exception) -> None:
        super().__init__()
        self.exc = exc

    def put(self, key: str, value: str, ttl: float, *, only_if_absent: bool = False) -> bool:
        raise self.exc


def test_store_login_errors_are_thrown_into_the_flow() -> None:
    def flow() -> Flow[str]:
        try:
            yield from store_put("k", "v", 1)
        except StoreError as exc:
            return exc.reason
        return "no error"

    assert sync_runner(store=BrokenStore(StoreError("down"))).run(flow()) == "store_unavailable"


# The flow is always closed --------------------------------------------------------


class Tracked:
    def __init__(self) -> None:
        self.closed = False

    def flow(self, *effects: Effect) -> Generator[Effect, Reply, str]:
        try:
            for effect in effects:  # noqa: UP028  # `yield from` a tuple cannot take `send()`
                yield effect
            return "finished"
        finally:
            self.closed = True


def test_flow_closed_when_an_effect_is_unknown() -> None:
    tracked = Tracked()
    with pytest.raises(TypeError):
        sync_runner().run(tracked.flow(object()))  # type: ignore[arg-type]  # a bad effect
    assert tracked.closed


async def test_flow_closed_when_an_effect_is_unknown_async() -> None:
    tracked = Tracked()
    with pytest.raises(TypeError):
        await async_runner().run(tracked.flow(object()))  # type: ignore[arg-type]  # a bad effect
    assert tracked.closed


def test_flow_closed_when_the_store_crashes() -> None:
    tracked = Tracked()
    runner = sync_runner(store=BrokenStore(RuntimeError("bug")))
    with pytest.raises(RuntimeError):
        runner.run(tracked.flow(tagged(), StorePut("k", "v", 1)))
    assert tracked.closed


def test_flow_closed_after_an_error_it_does_not_catch() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    tracked = Tracked()
    with pytest.raises(UpstreamError):
        sync_runner(handler).run(tracked.flow(tagged(), tagged()))
    assert tracked.closed


def test_flow_closed_when_it_finishes() -> None:
    tracked = Tracked()
    assert sync_runner().run(tracked.flow(tagged())) == "finished"
    assert tracked.closed


async def test_flow_closed_when_the_request_is_cancelled() -> None:
    entered = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        entered.set()
        await asyncio.Event().wait()  # never answers
        raise AssertionError("unreachable")

    tracked = Tracked()
    task = asyncio.create_task(async_runner(handler).run(tracked.flow(tagged())))
    await asyncio.wait_for(entered.wait(), WAIT)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert tracked.closed


# The two drivers are the same code --------------------------------------------------


# Names that must differ between the two runners, mapped to the sync spelling.
SYNC_SPELLING = {
    "AsyncRunner": "SyncRunner",  # the class names
    "AsyncSender": "SyncSender",  # what requests are sent with (a client or a pool)
    "AsyncStore": "Store",  # the store protocols
    "asyncio": "threading",  # the lock factory: asyncio.Lock vs threading.Lock
    "ASYNC_LOCKS": "SYNC_LOCKS",  # the process-wide single-flight locks
    "AsyncPool": "SyncPool",  # what performs an `All`: a TaskGroup vs a bounded thread pool
    "ASYNC_POOL": "SYNC_POOL",  # the process-wide pools
}


class Desugar(ast.NodeTransformer):
    """Remove `async`/`await` and the names that must differ."""

    def visit_Await(self, node: ast.Await) -> ast.AST:
        value: ast.AST = self.visit(node.value)
        return value

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> ast.AST:
        self.generic_visit(node)
        return ast.FunctionDef(**{f: getattr(node, f) for f in node._fields})

    def visit_AsyncWith(self, node: ast.AsyncWith) -> ast.AST:
        self.generic_visit(node)
        return ast.With(**{f: getattr(node, f) for f in node._fields})

    def visit_With(self, node: ast.With) -> ast.AST:
        self.generic_visit(node)
        # `with a as x, x:` is what the sync side writes for the async side's
        # `with a as x: async with x:` (one cannot mix `with` and `async with`).
        if len(node.body) == 1 and isinstance(node.body[0], ast.With):
            inner = node.body[0]
            return ast.With(items=node.items + inner.items, body=inner.body)
        return node

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        self.generic_visit(node)
        node.name = SYNC_SPELLING.get(node.name, node.name)
        return node

    def visit_Name(self, node: ast.Name) -> ast.AST:
        node.id = SYNC_SPELLING.get(node.id, node.id)
        return node

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        self.generic_visit(node)
        node.attr = SYNC_SPELLING.get(node.attr, node.attr)
        return node


def class_tree(name: str) -> str:
    module = ast.parse(inspect.getsource(drive))
    (node,) = [n for n in module.body if isinstance(n, ast.ClassDef) and n.name == name]
    return ast.dump(ast.fix_missing_locations(Desugar().visit(node)), include_attributes=False)


def test_sync_and_async_runners_are_the_same_code() -> None:
    assert class_tree("SyncRunner") == class_tree("AsyncRunner")


def test_desugaring_does_notice_a_difference() -> None:
    """The comparison is not vacuous: a one-token change is caught."""
    source = inspect.getsource(drive).replace("effect = flow.throw(exc)", "raise exc", 1)
    module = ast.parse(source)
    (node,) = [n for n in module.body if isinstance(n, ast.ClassDef) and n.name == "SyncRunner"]
    changed = ast.dump(Desugar().visit(node), include_attributes=False)
    assert changed != class_tree("AsyncRunner")


# Independent store operations: one batch when the store has one ----------------------


class BatchCounting(MemoryStore):
    """A memory store that records its batches and its single operations."""

    def __init__(self, *, fail: bool = False) -> None:
        super().__init__()
        self.batches: list[list[str]] = []
        self.fail = fail

    def batch(self, ops: Any) -> Any:
        self.batches.append([command_of(op) for op in ops])
        if self.fail:
            raise StoreError("Redis PIPELINE unreachable")
        return super().batch(ops)


class NoBatch(MemoryStore):
    """A store written to the five-method interface only (no `batch`)."""

    batch = None  # type: ignore[assignment]


def independent_ops() -> Flow[list[Any]]:
    yield from store_put("a", "1", 60)
    yield from store_put("c", "2", 60)
    yield from store_put("d", "4", 60)
    return (
        yield from gather(
            store_get("a"),
            store_put("c", "x", 60, only_if_absent=True),
            store_put("b", "3", 60),
            store_take("d"),
            store_delete("missing"),
        )
    )


BATCH_EXPECTED = ["1", False, True, "4", None]


def test_independent_store_operations_go_as_one_batch() -> None:
    store = BatchCounting()
    assert sync_runner(store=store).run(independent_ops()) == BATCH_EXPECTED
    assert store.batches == [["get", "put", "put", "take", "delete"]]
    assert store.get("b") == "3"
    assert store.get("d") is None


async def test_independent_store_operations_go_as_one_batch_async() -> None:
    store = BatchCounting()
    assert await async_runner(store=store).run(independent_ops()) == BATCH_EXPECTED
    assert store.batches == [["get", "put", "put", "take", "delete"]]


def test_a_store_without_batches_gets_the_operations_one_by_one() -> None:
    assert sync_runner(store=NoBatch()).run(independent_ops()) == BATCH_EXPECTED


def test_an_all_mixing_a_call_and_store_operations_is_not_a_batch() -> None:
    store = BatchCounting()

    def flow() -> Flow[list[Any]]:
        return (yield from gather(store_get("a"), http(tagged()), store_get("b")))

    got = sync_runner(store=store).run(flow())
    assert got[0] is None
    assert got[2] is None
    assert got[1].json() == {"path": "/thing"}
    assert store.batches == []


def test_a_failed_batch_is_thrown_into_every_sub_flow() -> None:
    def guarded(key: str) -> Flow[str]:
        try:
            yield from store_get(key)
        except StoreError as exc:
            return exc.reason
        return "no error"

    def flow() -> Flow[list[Any]]:
        return (yield from gather(guarded("a"), guarded("b")))

    store = BatchCounting(fail=True)
    assert sync_runner(store=store).run(flow()) == ["store_unavailable"] * 2
    assert len(store.batches) == 1


def test_a_session_re_check_reads_its_revocation_keys_in_one_batch() -> None:
    from dingmw.core.revocation import is_revoked, person_key

    store = BatchCounting()
    store.put(person_key("site-b", "u1"), "2000", 60)
    runner = sync_runner(store=store)
    assert runner.run(is_revoked("sid1", "u1", 1000, ("site-a", "site-b"))) is True
    assert runner.run(is_revoked("sid1", "u1", 3000, ("site-a", "site-b"))) is False
    assert store.batches == [["get", "get", "get"]] * 2
