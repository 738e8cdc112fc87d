"""Effects: the only way a flow asks for I/O.

A flow is a generator that yields effects and receives their results:

* an `httpx.Request` is answered with an `httpx.Response` (or an
  `UpstreamError` thrown in, when the network fails);
* a store operation (`StoreGet`, `StorePut`, `StoreTake`, `StoreDelete`) is
  answered with the stored value, a bool, or None;
* `Memo(key, fetch)` is answered with a cached string: the driver returns
  the stored value, or runs the `fetch` sub-flow once (single flight: other
  requests for the same key wait for it) and stores what it returns.

The helpers below narrow each reply's type in one place, so flow code reads
`response = yield from http(request)` and never casts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Generator
from typing import TypeAlias, TypeVar

import httpx

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


StoreOp: TypeAlias = StoreGet | StorePut | StoreTake | StoreDelete


@dataclasses.dataclass(frozen=True, slots=True)
class Memo:
    """A value cached in the store under `key`, fetched once when missing.

    `fetch()` builds a sub-flow that returns `(value, ttl_seconds)`.
    """

    key: str
    fetch: Callable[[], Flow[tuple[str, float]]]


T = TypeVar("T")
Effect: TypeAlias = httpx.Request | StoreOp | Memo
Reply: TypeAlias = httpx.Response | str | bool | None
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


def store_put(
    key: str, value: str, ttl: float, *, only_if_absent: bool = False
) -> Generator[Effect, Reply, bool]:
    reply = yield StorePut(key, value, ttl, only_if_absent)
    return bool(reply)


def store_delete(key: str) -> Generator[Effect, Reply, None]:
    yield StoreDelete(key)


def memo(key: str, fetch: Callable[[], Flow[tuple[str, float]]]) -> Generator[Effect, Reply, str]:
    reply = yield Memo(key, fetch)
    if not isinstance(reply, str):  # pragma: no cover - a driver bug
        raise TypeError("a Memo must be answered with a string")
    return reply


def _optional_str(reply: Reply) -> str | None:
    if reply is not None and not isinstance(reply, str):  # pragma: no cover - a driver bug
        raise TypeError("a store read must be answered with a string or None")
    return reply
