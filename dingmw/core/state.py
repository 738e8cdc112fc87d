"""Login state: one-shot, short-lived, and bound to the browser that started the login.

Rule 1: a login-page view allocates nothing on the server. The page draws a
random nonce (the `state` sent to DingTalk) and puts it, with `next` and an
expiry, in a short-lived signed cookie named after the nonce. Several pending
logins (tabs) each have their own cookie; at most `MAX_PENDING` are kept.

Rule 2: a callback is accepted only when this browser holds the signed cookie
for its `state` (constant-time comparison), the cookie was made for this site
(its audience, see `core.revocation`), it has not expired, and the nonce was
never used before: using it records it in the store with "set if absent", so a
replay fails on any instance sharing the store.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Callable, Generator, Mapping

from ..errors import StateError
from .effects import Effect, Reply, store_put
from .http import set_cookie
from .signing import Signer

log = logging.getLogger("dingmw")

MAX_PENDING = 5
_STATE_LEN = 32


@dataclasses.dataclass(frozen=True, slots=True)
class PendingLogin:
    nonce: str
    next_path: str
    expires: float
    cookie_name: str
    # What the login is for beyond `next`, as the caller of `begin` gave it (the hub's
    # pending authorization request); signed with the rest.
    extra: Mapping[str, str] | None = None


class LoginStates:
    def __init__(
        self,
        *,
        secret_keys: tuple[str, ...],
        cookie_prefix: str,
        max_age: int,
        domain: str | None,
        clock: Callable[[], float],
        audience: str,
    ) -> None:
        self._signer = Signer(secret_keys, "state")
        self._audience = audience
        self._prefix = cookie_prefix
        self._max_age = max_age
        self._domain = domain
        self._clock = clock

    def cookie_name(self, nonce: str) -> str:
        digest = hashlib.sha256(nonce.encode("utf-8")).hexdigest()[:16]
        return f"{self._prefix}{digest}"

    def begin(
        self,
        next_path: str,
        *,
        cookies: Mapping[str, str],
        path: str,
        secure: bool,
        extra: Mapping[str, str] | None = None,
    ) -> tuple[str, list[str]]:
        """A new state and the `Set-Cookie` values that bind it to this browser.

        Older pending logins beyond `MAX_PENDING - 1` are dropped (oldest first).
        """
        now = self._clock()
        nonce = secrets.token_urlsafe(24)
        payload: dict[str, object] = {
            "n": nonce,
            "next": next_path,
            "exp": int(now) + self._max_age,
            "aud": self._audience,
        }
        if extra is not None:
            payload["x"] = dict(extra)
        value = self._signer.sign(json.dumps(payload, separators=(",", ":")).encode())
        headers = [
            set_cookie(
                self.cookie_name(nonce),
                value,
                path=path,
                max_age=self._max_age,
                secure=secure,
                domain=self._domain,
            )
        ]
        pending = sorted(
            (exp, name)
            for name, raw in cookies.items()
            if name.startswith(self._prefix)
            for exp in [self._expiry(raw)]
        )
        for _, name in pending[: max(0, len(pending) - (MAX_PENDING - 1))]:
            headers.append(self.forget(name, path=path, secure=secure))
        return nonce, headers

    def _expiry(self, raw: str) -> float:
        data = self._decode(raw)
        return float(str(data["exp"])) if data else 0.0

    def _decode(self, raw: str) -> dict[str, object] | None:
        payload = self._signer.unsign(raw)
        if payload is None:
            return None
        try:
            data = json.loads(payload)
        except ValueError:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("n"), str):
            return None
        if not isinstance(data.get("next"), str) or not isinstance(data.get("exp"), int):
            return None
        extra = data.get("x")
        if extra is not None and not (
            isinstance(extra, dict) and all(isinstance(v, str) for v in extra.values())
        ):
            return None
        return data

    def check(self, state: str | None, cookies: Mapping[str, str]) -> PendingLogin:
        """The pending login `state` belongs to, or `StateError` naming what is wrong."""
        if not state:
            raise StateError("state_missing")
        if len(state) != _STATE_LEN:
            raise StateError("state_unknown")
        name = self.cookie_name(state)
        raw = cookies.get(name)
        if raw is None:
            raise StateError("state_unknown")
        data = self._decode(raw)
        if data is None:
            raise StateError("state_unknown")
        nonce = str(data["n"])
        if not hmac.compare_digest(nonce.encode(), state.encode()):
            raise StateError("state_unknown")
        if data.get("aud") != self._audience:
            log.info(
                "dingmw: login state refused: it was started on another site (audience %s, "
                "this site's is %s)",
                str(data.get("aud"))[:8],
                self._audience[:8],
            )
            raise StateError("state_unknown")
        expires = float(str(data["exp"]))
        if self._clock() >= expires:
            raise StateError("state_expired")
        extra = data.get("x")
        return PendingLogin(
            nonce,
            str(data["next"]),
            expires,
            name,
            dict(extra) if isinstance(extra, dict) else None,
        )

    def consume(self, pending: PendingLogin) -> Generator[Effect, Reply, None]:
        """Record the nonce as used; `StateError` when it was used before (on any instance)."""
        ttl = max(1.0, pending.expires - self._clock() + 1)
        fresh = yield from store_put(f"state-used:{pending.nonce}", "1", ttl, only_if_absent=True)
        if not fresh:
            raise StateError("state_used")

    def forget(self, cookie_name: str, *, path: str, secure: bool) -> str:
        return set_cookie(cookie_name, "", path=path, max_age=0, secure=secure, domain=self._domain)
