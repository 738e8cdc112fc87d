"""Effects: the only way a flow asks for I/O.

A flow is a generator that yields effects and receives their results:

* an `httpx.Request` is answered with an `httpx.Response` (or an
  `UpstreamError` thrown in, when the network fails);
* a store operation (`StoreGet`, `StorePut`, `StoreTake`, `StoreDelete`,
  `StorePing`) is answered with the stored value, a bool, or None;
* `Memo(key, fetch)` is answered with a cached string: the driver returns
  the stored value, or runs the `fetch` sub-flow once (single flight: other
  requests for the same key wait for it) and stores what it returns;
* `All(effects)` is answered with `Replies`: the drivers perform its effects
  concurrently and answer each with its reply, or with the `LoginError` it
  failed with.

Flows rarely yield `All` themselves: `gather(*flows)` (and `both(a, b)`) runs
independent sub-flows side by side, yielding each round of their effects as
one `All` and throwing each failure into the sub-flow whose effect failed, so
a login waits for its longest chain of dependent calls, not for their sum.

The helpers below narrow each reply's type in one place, so flow code reads
`response = yield from http(request)` and never casts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Generator
from typing import Any, TypeAlias, TypeVar, cast

import httpx

from ..errors import LoginError

# The request extension naming a DingTalk call, for error messages.
CALL_EXTENSION = "dingmw.call"


@dataclasses.dataclass(frozen=True, slots=True)
class StoreGet:
    key: str


@dataclasses.dataclass(frozen=True, slots=True)
class StorePut:
    """Set `key` for `ttl` seconds; with `only_if_absent`, reply False when it exists."""

    key: str
    value: str
    ttl: float
    only_if_absent: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class StoreTake:
    """Get and delete `key` atomically (single use)."""

    key: str


@dataclasses.dataclass(frozen=True, slots=True)
class StoreDelete:
    key: str


@dataclasses.dataclass(frozen=True, slots=True)
class StorePing:
    """Is the store answering within `timeout` seconds? Answered with True; a `StoreError`
    is thrown in when it is not."""

    timeout: float


StoreOp: TypeAlias = StoreGet | StorePut | StoreTake | StoreDelete | StorePing


@dataclasses.dataclass(frozen=True, slots=True)
class Memo:
    """A value cached in the store under `key`, fetched once when missing.

    `fetch()` builds a sub-flow that returns `(value, ttl_seconds)`.
    """

    key: str
    fetch: Callable[[], Flow[tuple[str, float]]]


@dataclasses.dataclass(frozen=True, slots=True)
class All:
    """Several independent effects, performed concurrently; answered with `Replies`."""

    effects: tuple[Effect, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class Replies:
    """The answer to `All`, in its order: each effect's reply or the `LoginError` it raised."""

    items: tuple[Reply | LoginError, ...]


T = TypeVar("T")
A = TypeVar("A")
B = TypeVar("B")
Effect: TypeAlias = httpx.Request | StoreOp | Memo | All
Reply: TypeAlias = httpx.Response | str | bool | Replies | None
Flow: TypeAlias = Generator[Effect, Reply, T]


def done(value: T) -> Flow[T]:
    """A flow that performs no effect and returns `value`."""
    return value
    yield  # pragma: no cover - unreachable; makes this function a generator


def http(request: httpx.Request) -> Generator[Effect, Reply, httpx.Response]:
    reply = yield request
    if not isinstance(reply, httpx.Response):  # pragma: no cover - a driver bug
        raise TypeError("an httpx.Request must be answered with an httpx.Response")
    return reply


def store_get(key: str) -> Generator[Effect, Reply, str | None]:
    reply = yield StoreGet(key)
    return _optional_str(reply)


def store_take(key: str) -> Generator[Effect, Reply, str | None]:
    reply = yield StoreTake(key)
    return _optional_str(reply)


def store_reads(keys: tuple[str, ...]) -> Generator[Effect, Reply, list[str | None]]:
    """The values of `keys`, read together (one `All`: one round trip to Redis); the first
    failure is raised. `gather` of `store_get`s, without its sub-flows (the re-check of a
    session runs it, on the hot path's edge)."""
    if len(keys) == 1:
        return [(yield from store_get(keys[0]))]
    reply = yield All(tuple(StoreGet(key) for key in keys))
    if not isinstance(reply, Replies) or len(reply.items) != len(keys):
        raise TypeError("an All must be answered with one reply per effect")
    values: list[str | None] = []
    for item in reply.items:
        if isinstance(item, LoginError):
            raise item
        values.append(_optional_str(item))
    return values


def store_put(
    key: str, value: str, ttl: float, *, only_if_absent: bool = False
) -> Generator[Effect, Reply, bool]:
    reply = yield StorePut(key, value, ttl, only_if_absent)
    return bool(reply)


def store_delete(key: str) -> Generator[Effect, Reply, None]:
    yield StoreDelete(key)


def store_ping(timeout: float) -> Generator[Effect, Reply, None]:
    yield StorePing(timeout)


def memo(key: str, fetch: Callable[[], Flow[tuple[str, float]]]) -> Generator[Effect, Reply, str]:
    reply = yield Memo(key, fetch)
    if not isinstance(reply, str):  # pragma: no cover - a driver bug
        raise TypeError("a Memo must be answered with a string")
    return reply


def gather(*flows: Flow[Any]) -> Flow[list[Any]]:
    """Run independent sub-flows side by side; their values, in order.

    Each round, the effect every unfinished sub-flow waits on is yielded in
    one `All` (or alone, when one is left), and each reply goes back to its
    own sub-flow; a failed effect's `LoginError` is thrown into that sub-flow
    at its `yield`, as a driver would. The first sub-flow (in order) that
    raises ends the gather: the others are closed and the error propagates.
    No effect is in flight then: a round ends when all its effects have.
    """
    results: list[Any] = [None] * len(flows)
    waiting: dict[int, Effect] = {}

    def advance(index: int, outcome: Reply | LoginError) -> None:
        try:
            if isinstance(outcome, LoginError):
                effect = flows[index].throw(outcome)
            else:
                effect = flows[index].send(outcome)
        except StopIteration as stop:
            results[index] = stop.value
            waiting.pop(index, None)
        else:
            waiting[index] = effect

    try:
        for index in range(len(flows)):
            advance(index, None)
        while waiting:
            order = list(waiting)
            outcomes: tuple[Reply | LoginError, ...]
            if len(order) == 1:
                try:
                    outcomes = ((yield waiting[order[0]]),)
                except LoginError as exc:
                    outcomes = (exc,)
            else:
                reply = yield All(tuple(waiting[index] for index in order))
                if not isinstance(reply, Replies) or len(reply.items) != len(order):
                    raise TypeError("an All must be answered with one reply per effect")
                outcomes = reply.items
            for index, outcome in zip(order, outcomes, strict=True):
                advance(index, outcome)
        return results
    finally:
        for flow in flows:
            flow.close()


def both(first: Flow[A], second: Flow[B]) -> Flow[tuple[A, B]]:
    """`gather` for two sub-flows of different types."""
    a, b = yield from gather(first, second)
    return cast(A, a), cast(B, b)


def _optional_str(reply: Reply) -> str | None:
    if reply is not None and not isinstance(reply, str):  # pragma: no cover - a driver bug
        raise TypeError("a store read must be answered with a string or None")
    return reply
