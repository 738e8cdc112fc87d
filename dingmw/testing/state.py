"""The fake's memory: directory, clock, and every code and token it has handed out.

Lifetimes (dingtalk-api.md §7): access tokens 7200 s, renewed and returned unchanged
while valid; refreshToken 30 days; sns_token 7200 s; persistent_code never expires;
JSAPI code 5 min, single use. The TTL of authCode / tmp_auth_code / loginTmpCode is
UNCONFIRMED; the fake gives them 5 minutes (CODE_TTL). Every code is single use and
bound to the app (or corp) it was minted for.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from .directory import FakeApp, FakeUser

CODE_TTL = 300.0
TOKEN_TTL = 7200
REFRESH_TTL = 30 * 24 * 3600.0


@dataclass(slots=True, kw_only=True)
class Grant:
    kind: str
    value: str
    expires_at: float | None
    app_key: str | None = None
    unionid: str | None = None
    corp_id: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def alive(self, now: float) -> bool:
        return self.expires_at is None or now < self.expires_at


class Ledger:
    """Codes and tokens by (kind, value); not locked itself (World holds the lock)."""

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self._grants: dict[tuple[str, str], Grant] = {}
        self._current: dict[tuple[str, Hashable], str] = {}

    def mint(
        self,
        kind: str,
        *,
        ttl: float | None,
        app_key: str | None = None,
        unionid: str | None = None,
        corp_id: str | None = None,
        extra: dict[str, str] | None = None,
        nbytes: int = 16,
    ) -> Grant:
        value = secrets.token_hex(nbytes)
        grant = Grant(
            kind=kind,
            value=value,
            expires_at=None if ttl is None else self._now() + ttl,
            app_key=app_key,
            unionid=unionid,
            corp_id=corp_id,
            extra=dict(extra or {}),
        )
        self._grants[(kind, value)] = grant
        return grant

    def current(
        self,
        kind: str,
        key: Hashable,
        *,
        ttl: float,
        app_key: str | None = None,
        unionid: str | None = None,
        corp_id: str | None = None,
        extra: dict[str, str] | None = None,
    ) -> Grant:
        """The same token while it is valid (its lifetime renewed), else a new one."""
        now = self._now()
        value = self._current.get((kind, key))
        if value is not None:
            grant = self._grants.get((kind, value))
            if grant is not None and grant.alive(now):
                grant.expires_at = now + ttl
                if extra:
                    grant.extra.update(extra)
                return grant
        grant = self.mint(
            kind, ttl=ttl, app_key=app_key, unionid=unionid, corp_id=corp_id, extra=extra
        )
        self._current[(kind, key)] = grant.value
        return grant

    def look(self, kind: str, value: str) -> tuple[Grant | None, bool]:
        """(grant, expired): the grant when it exists and is alive; expired=True if it lapsed."""
        grant = self._grants.get((kind, value))
        if grant is None:
            return None, False
        if not grant.alive(self._now()):
            return None, True
        return grant, False

    def take(self, kind: str, value: str) -> Grant | None:
        """Consume a single-use code: returns it once, then never again."""
        grant, _ = self.look(kind, value)
        if grant is not None:
            del self._grants[(kind, value)]
        return grant


class World:
    """Directory + clock + ledger + the settings a test can flip."""

    def __init__(self, clock: Callable[[], float] | None) -> None:
        self._clock: Callable[[], float] = clock if clock is not None else time.time
        self._offset = 0.0
        self.lock = threading.RLock()
        self.apps: dict[str, FakeApp] = {}
        self.users: dict[str, FakeUser] = {}
        self.ledger = Ledger(self.now)
        self.client_user: str | None = None
        # The doc names only ``authCode`` on the OAuth2 callback; some projects saw ``code``
        # too. Off by default so a client reading only ``code`` fails against the fake.
        self.oauth2_also_code = False

    def now(self) -> float:
        return self._clock() + self._offset

    def advance(self, seconds: float) -> None:
        with self.lock:
            self._offset += seconds

    def app(self, app_key: str | None) -> FakeApp | None:
        return self.apps.get(app_key) if app_key else None

    def user(self, unionid: str | None) -> FakeUser | None:
        return self.users.get(unionid) if unionid else None

    def user_by_userid(self, corp_id: str | None, userid: str) -> FakeUser | None:
        if corp_id is None:
            return None
        for user in self.users.values():
            if user.userid_in(corp_id) == userid:
                return user
        return None

    def corp_known(self, corp_id: str) -> bool:
        return any(app.corp_id == corp_id for app in self.apps.values()) or any(
            corp_id in user.userid_by_corp for user in self.users.values()
        )
