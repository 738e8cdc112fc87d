"""The cache of verified sessions: one per middleware (or hub), bounded in bytes.

Keyed by the session cookie's value alone (never the whole `Cookie` header,
so other cookies beside it, however large or many, cost nothing), it holds:

* verified sessions, in a `cachetools.LRUCache` whose size is the sum of the
  entries' weights (`Entry.size`: the cookie value, two bytes per byte of its
  plaintext, and a fixed overhead), at most `max_bytes`. The least recently used
  session is dropped first, and a dropped one is simply verified again. A hit
  is a read of a plain dict beside it (the LRU's own read is several Python
  calls and a lock); the core records a session's use in the LRU order when its
  re-check falls due (`touch`, once per `DINGMW_SESSION_RECHECK` while it is in
  use), so the order is "recently used" to within that interval and the hot
  path writes nothing;
* cookie values found bad (forged, altered, expired, revoked, for another
  site), in a `cachetools.TTLCache` of at most `bad_bytes` for `bad_ttl`
  seconds, so a bad cookie sent again is refused without decrypting it again.
  Values longer than `MAX_COOKIE_BYTES` are never cached: no session is that long.

So the memory a flood of distinct cookies can take is bounded by
`max_bytes + bad_bytes` (36 MiB by default) whatever is sent. One lock
serialises the changes (WSGI servers call from many threads); a read, the hot
path, takes no lock: a dict read is atomic under the GIL, and an entry a
concurrent change removed reads as a miss, which only means verifying again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from cachetools import LRUCache, TTLCache

from .core.session import Entry

DEFAULT_MAX_BYTES = 32 * 1024 * 1024
DEFAULT_BAD_BYTES = 4 * 1024 * 1024
DEFAULT_BAD_TTL = 60.0
# What a remembered bad value costs besides its characters (the str, the cache's dicts and
# its expiry links; measured with tracemalloc, rounded up).
BAD_OVERHEAD = 400


def _entry_size(entry: Entry) -> int:
    return entry.size


def _bad_size(size: int) -> int:
    return size


class _Verified(LRUCache[str, Entry]):
    """cachetools' LRU, keeping `index` (a plain dict of the same entries) in step.

    Every change goes through `__setitem__` or `__delitem__` (an eviction too:
    cachetools' `popitem` deletes the least recently used key)."""

    def __init__(self, maxsize: int, index: dict[str, Entry]) -> None:
        super().__init__(maxsize=maxsize, getsizeof=_entry_size)
        self._index = index

    def __setitem__(self, key: str, value: Entry) -> None:
        super().__setitem__(key, value)
        self._index[key] = value

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self._index.pop(key, None)


class VerifiedSessions:
    """A `dingmw.core.session.SessionCache` on cachetools, safe across threads."""

    def __init__(
        self,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        bad_bytes: int = DEFAULT_BAD_BYTES,
        bad_ttl: float = DEFAULT_BAD_TTL,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_bytes = max_bytes
        self.bad_bytes = bad_bytes
        self._index: dict[str, Entry] = {}
        self._good = _Verified(max_bytes, self._index)
        self.get = self._index.get  # the hot path: `get(value)`, one C call
        self._bad: TTLCache[str, int] = TTLCache(
            maxsize=bad_bytes, ttl=bad_ttl, timer=timer, getsizeof=_bad_size
        )
        self._lock = threading.Lock()

    def touch(self, value: str) -> None:
        with self._lock:
            self._good.get(value)  # a read moves it to the LRU's recent end

    def add(self, value: str, entry: Entry) -> None:
        if entry.size > self.max_bytes:
            return
        with self._lock:
            self._good[value] = entry
            self._bad.pop(value, None)

    def drop(self, value: str) -> None:
        with self._lock:
            self._good.pop(value, None)

    def is_bad(self, value: str) -> bool:
        with self._lock:
            return value in self._bad

    def add_bad(self, value: str) -> None:
        size = len(value) + BAD_OVERHEAD
        if size > self.bad_bytes:
            return
        with self._lock:
            self._bad[value] = size

    def entries(self) -> list[Entry]:
        with self._lock:
            return list(self._good.values())

    @property
    def weight(self) -> int:
        """The bytes both caches account for now (at most `max_bytes + bad_bytes`)."""
        with self._lock:
            return int(self._good.currsize + self._bad.currsize)

    def __len__(self) -> int:
        with self._lock:
            return len(self._good)
