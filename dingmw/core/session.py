"""The session cookie: who is logged in, encrypted, bound to one site, revocable.

The cookie's value is sealed with AES-256-GCM (`core.signing.Sealer`, keys
derived from `DINGMW_SECRET_KEY`: the first seals, all open), so nobody who
sees it can read or change what it holds. Inside, as compact JSON:

    sid   a random session id (what logout revokes in the store)
    aud   the audience: which site(s) the session is for (`core.revocation`)
    iat   when it was issued, in milliseconds (what "log out everywhere" compares)
    exp   when it expires, in seconds
    id    the identity (empty fields left out)

A cookie is checked in three steps: opened (AEAD), read (aud, iat, exp, the
identity), then admitted by the core (allow-lists, revocation; see
`Core.with_session`). What passed is kept in a cache of verified sessions (a
`SessionCache`, outside the core: `dingmw.session_cache`) keyed by the cookie's
value alone, with the time its next re-check is due. The hot path of every
authenticated request is one cookie lookup in the `Cookie` header and one cache
hit: no decryption, nothing re-set on the response.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import secrets
from collections.abc import Callable
from typing import Any, Protocol

from ..errors import LoginError
from ..identity import Identity
from .http import cookie_value, set_cookie
from .outcome import Forward
from .routes import own_route
from .signing import Sealer

log = logging.getLogger("dingmw")

MAX_COOKIE_BYTES = 4000
CLOCK_SKEW = 60
# Dropped, in this order, when a cookie would not fit in MAX_COOKIE_BYTES.
_OPTIONAL = ("avatar_url", "title", "job_number", "mobile", "email", "dept_ids", "name", "nick")
# What one cached session weighs: its key, twice its plaintext (the Identity's
# strings) and a fixed overhead (the entry, the Session, the Identity, the cache's
# links, and the scope keys the ASGI adapter keeps in its forward), measured with
# tracemalloc and rounded up (tests hold the weight to it, in the core and through the
# ASGI hot path): about 2.3 KB for a typical person, so the 32 MiB bound holds some
# 14,000 sessions.
ENTRY_OVERHEAD = 1536
PLAIN_WEIGHT = 2


@dataclasses.dataclass(frozen=True, slots=True)
class Session:
    """One verified session cookie's content."""

    identity: Identity
    sid: str
    audience: str
    issued_ms: int
    expires: float


@dataclasses.dataclass(slots=True)
class Entry:
    """A session in the cache of verified sessions.

    `check_at` is when the allow-lists and the store's revocations must be
    consulted again (0: never yet in this process), and so when the session's
    use is next recorded in the cache's LRU order (`SessionCache.touch`): the hot
    path compares one time and writes nothing; `refused` is the allow-list's
    answer when the person may no longer use the site; `forward` is the hot
    path's answer, built once.
    """

    session: Session
    size: int
    check_at: float = 0.0
    refused: LoginError | None = None
    forward: Forward = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.forward = Forward(self.session.identity)


class SessionCache(Protocol):
    """Verified sessions by cookie value, and cookie values recently found bad.

    Bounded in bytes (each `Entry` weighs `Entry.size`); safe to call from
    several threads. `dingmw.session_cache.VerifiedSessions` is the one in use.
    """

    def get(self, value: str) -> Entry | None:
        """The entry of `value`, without recording its use (the hot path)."""
        ...

    def touch(self, value: str) -> None:
        """Record that `value`'s session was used now (its place in the LRU order)."""
        ...

    def add(self, value: str, entry: Entry) -> None: ...

    def drop(self, value: str) -> None: ...

    def is_bad(self, value: str) -> bool: ...

    def add_bad(self, value: str) -> None: ...

    def entries(self) -> list[Entry]: ...


class Sessions:
    """Issues, opens and caches session cookies for one site."""

    def __init__(
        self,
        *,
        secret_keys: tuple[str, ...],
        cookie_name: str,
        max_age: int,
        path: str,
        domain: str | None,
        clock: Callable[[], float],
        cache: SessionCache,
        audience: str,
        recheck: float,
    ) -> None:
        self._sealer = Sealer(secret_keys, "session")
        self._aad = cookie_name.encode()
        self._name = cookie_name
        self._max_age = max_age
        self._path = path
        self._domain = domain
        self._clock = clock
        self._cache = cache
        self.audience = audience
        self.recheck = recheck

    @property
    def cookie_name(self) -> str:
        return self._name

    # Reading ------------------------------------------------------------------

    def hot(self, prefix: str) -> Callable[[str, str], Forward | None]:
        """The hot path, as one function: `hit(path, cookie_header)`.

        `Forward` with the identity of a verified session whose re-check is not
        due, for a path that is not `prefix` or below it (the middleware's own
        routes go the long way; an app path that merely starts like them, such as
        `/dingtalkx` for `/dingtalk`, does not); else None. Everything it needs is
        bound once here, so a request costs one Python frame: a `str.partition` or
        two, one cache read, one clock read.

        The cookie's value is read directly when the first `name=` starts the header
        or follows `"; "` and the name occurs nowhere before it (what browsers send);
        then it is exactly `cookie_value`'s answer. Any other header is read by
        `cookie_value` itself.
        """
        name = self._name
        named = name + "="
        get = self._cache.get
        clock = self._clock
        skip = len(prefix)

        def hit(path: str, header: str) -> Forward | None:
            if path[:skip] == prefix and own_route(path, prefix) is not None:
                return None
            # `partition` and slices rather than `find` and `startswith`: on this path the
            # cost of a call's argument parsing is more than that of the search it makes.
            before, found, after = header.partition(named)
            if not found:  # then `cookie_value` finds no value either
                return None
            if before and (before[-2:] != "; " or name in before):
                entry = get(cookie_value(header, name) or "")
            else:
                entry = get(after.partition(";")[0])
            if entry is None or entry.refused is not None or clock() >= entry.check_at:
                return None
            return entry.forward

        return hit

    def due(self, cookie_header: str) -> tuple[str, Entry] | None:
        """The cookie value and entry of a cached, unexpired session the allow-lists have
        not refused, whose re-check is due; else None."""
        value = cookie_value(cookie_header, self._name)
        if not value:
            return None
        entry = self._cache.get(value)
        if entry is None or entry.refused is not None:
            return None
        now = self._clock()
        if now < entry.check_at or now >= entry.session.expires:
            return None
        # The session is in use: its place in the LRU order is recorded here, once per
        # re-check, never on the hot path.
        self._cache.touch(value)
        return value, entry

    def has_cookie(self, cookie_header: str) -> bool:
        """Whether the request carries a session cookie at all (verified or not)."""
        return bool(cookie_value(cookie_header, self._name))

    def lookup(self, cookie_header: str) -> tuple[str, Entry] | None:
        """The request's session (cookie value and cache entry), opening it when not cached.

        None when there is no session cookie, or it is forged, altered, expired
        or for another site. The entry may be due for a re-check (see `due`).
        """
        value = cookie_value(cookie_header, self._name)
        if not value:
            return None
        now = self._clock()
        entry = self._cache.get(value)
        if entry is not None:
            if now < entry.session.expires:
                return value, entry
            self._cache.drop(value)
            return None
        if len(value) > MAX_COOKIE_BYTES or self._cache.is_bad(value):
            return None
        opened = self.open(value, now)
        if opened is None:
            self._cache.add_bad(value)
            return None
        session, plain_size = opened
        entry = Entry(session, size=len(value) + PLAIN_WEIGHT * plain_size + ENTRY_OVERHEAD)
        self._cache.add(value, entry)
        return value, entry

    def is_due(self, entry: Entry) -> bool:
        return self._clock() >= entry.check_at

    def checked(self, entry: Entry, refused: LoginError | None = None) -> None:
        """Record a re-check: the next one is due `recheck` seconds from now."""
        entry.refused = refused
        entry.check_at = min(self._clock() + self.recheck, entry.session.expires)

    def forget(self, value: str) -> None:
        """Drop a session from this process's cache and remember its value as bad for a while."""
        self._cache.drop(value)
        self._cache.add_bad(value)

    def recheck_person(self, unionid: str) -> None:
        """Make every cached session of `unionid` due for a re-check now."""
        for entry in self._cache.entries():
            if entry.session.identity.unionid == unionid:
                entry.check_at = 0.0

    def open(self, value: str, now: float) -> tuple[Session, int] | None:
        """The session in a cookie value (and its plaintext's size), or None."""
        payload = self._sealer.unseal(value, self._aad)
        if payload is None:
            return None
        try:
            data = json.loads(payload)
            sid, aud = data["sid"], data["aud"]
            issued_ms = data["iat"]
            expires = data["exp"]
            if not (isinstance(sid, str) and isinstance(aud, str)):
                raise ValueError("sid and aud must be strings")
            if not (type(issued_ms) is int and type(expires) is int):
                raise ValueError("iat and exp must be integers")
            identity = Identity.from_dict(data["id"])
        except (ValueError, KeyError, TypeError):
            return None
        if aud != self.audience:
            log.info(
                "dingmw: session cookie refused: it was issued for another site (audience %s, "
                "this site's is %s); sites that share logins need one DINGMW_SESSION_AUDIENCE",
                aud[:8],
                self.audience[:8],
            )
            return None
        if not (issued_ms / 1000 - CLOCK_SKEW <= now < expires):
            return None
        return Session(identity, sid, aud, issued_ms, float(expires)), len(payload)

    # Writing ------------------------------------------------------------------

    def issue(self, identity: Identity, *, secure: bool) -> str:
        """A `Set-Cookie` value that logs `identity` in for `max_age` seconds.

        The new session is cached as checked: it was admitted a moment ago.
        """
        now = self._clock()
        issued_ms = int(now * 1000)
        expires = int(now) + self._max_age
        sid = secrets.token_urlsafe(12)
        fields: dict[str, Any] = {
            k: v for k, v in identity.to_dict().items() if v not in (None, [], "")
        }
        value, size = self._encode(sid, issued_ms, expires, fields)
        for name in _OPTIONAL:
            if len(value) + len(self._name) < MAX_COOKIE_BYTES - 200:
                break
            fields.pop(name, None)
            value, size = self._encode(sid, issued_ms, expires, fields)
        kept = Identity.from_dict(fields)
        session = Session(kept, sid, self.audience, issued_ms, float(expires))
        entry = Entry(session, size=len(value) + PLAIN_WEIGHT * size + ENTRY_OVERHEAD)
        self.checked(entry)
        self._cache.add(value, entry)
        return set_cookie(
            self._name,
            value,
            path=self._path,
            max_age=self._max_age,
            secure=secure,
            domain=self._domain,
        )

    def _encode(
        self, sid: str, issued_ms: int, expires: int, fields: dict[str, Any]
    ) -> tuple[str, int]:
        payload = {"sid": sid, "aud": self.audience, "iat": issued_ms, "exp": expires, "id": fields}
        raw = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        return self._sealer.seal(raw, self._aad), len(raw)

    def clear(self, *, secure: bool) -> str:
        """A `Set-Cookie` header value that deletes the session cookie."""
        return set_cookie(
            self._name, "", path=self._path, max_age=0, secure=secure, domain=self._domain
        )
