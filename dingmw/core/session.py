"""The session cookie: who is logged in, signed and time-limited.

The cookie is `base64url(json).base64url(hmac)` (see `core.signing`), with
`iat` and `exp` inside, so it is verified without any server-side state and
works the same on every instance that shares `DINGMW_SECRET_KEY`.

This is the hot path of every authenticated request: a cookie lookup, one
dict hit (a cache of cookies already verified) or one HMAC, and nothing is
re-set on the response.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ..identity import Identity
from .http import cookie_value, set_cookie
from .signing import Signer

MAX_COOKIE_BYTES = 4000
_CACHE_SIZE = 4096
_CLOCK_SKEW = 60
# Dropped, in this order, when a cookie would not fit in MAX_COOKIE_BYTES.
_OPTIONAL = ("avatar_url", "title", "job_number", "mobile", "email", "dept_ids", "name", "nick")


class Sessions:
    """Issues and verifies session cookies for one set of settings."""

    def __init__(
        self,
        *,
        secret_keys: tuple[str, ...],
        cookie_name: str,
        max_age: int,
        path: str,
        domain: str | None,
        clock: Callable[[], float],
    ) -> None:
        self._signer = Signer(secret_keys, "session")
        self._name = cookie_name
        self._max_age = max_age
        self._path = path
        self._domain = domain
        self._clock = clock
        # Cookie header -> (identity, expiry) for headers whose session cookie was
        # verified: a repeat request costs one dict lookup, no parse and no HMAC.
        # Cleared when full: a miss costs one HMAC, so nothing smarter is needed.
        self._verified: dict[str, tuple[Identity, float]] = {}

    @property
    def cookie_name(self) -> str:
        return self._name

    def load(self, cookie_header: str) -> Identity | None:
        """The identity in a request's session cookie, or None when absent, forged or expired."""
        hit = self._verified.get(cookie_header)
        now = self._clock()
        if hit is not None:
            if now < hit[1]:
                return hit[0]
            self._verified.pop(cookie_header, None)
            return None
        value = cookie_value(cookie_header, self._name)
        if not value:
            return None
        verified = self._verify(value, now)
        if verified is None:
            return None
        if len(self._verified) >= _CACHE_SIZE:
            self._verified.clear()
        self._verified[cookie_header] = verified
        return verified[0]

    def _verify(self, value: str, now: float) -> tuple[Identity, float] | None:
        payload = self._signer.unsign(value)
        if payload is None:
            return None
        try:
            data = json.loads(payload)
            iat = float(data["iat"])
            exp = float(data["exp"])
            identity = Identity.from_dict(data["id"])
        except (ValueError, KeyError, TypeError):
            return None
        if not (iat - _CLOCK_SKEW <= now < exp):
            return None
        return identity, exp

    def issue(self, identity: Identity, *, secure: bool) -> str:
        """A `Set-Cookie` header value that logs `identity` in for `max_age` seconds."""
        now = int(self._clock())
        data: dict[str, Any] = {k: v for k, v in identity.to_dict().items() if v not in (None, [])}
        value = self._encode(data, now)
        for name in _OPTIONAL:
            if len(value) + len(self._name) < MAX_COOKIE_BYTES - 200:
                break
            data.pop(name, None)
            value = self._encode(data, now)
        return set_cookie(
            self._name,
            value,
            path=self._path,
            max_age=self._max_age,
            secure=secure,
            domain=self._domain,
        )

    def _encode(self, identity: dict[str, Any], now: int) -> str:
        payload = {"v": 1, "iat": now, "exp": now + self._max_age, "id": identity}
        raw = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        return self._signer.sign(raw)

    def clear(self, *, secure: bool) -> str:
        """A `Set-Cookie` header value that deletes the session cookie."""
        return set_cookie(
            self._name, "", path=self._path, max_age=0, secure=secure, domain=self._domain
        )
