"""The hub's one-time codes, access tokens and refresh tokens, as store effects.

Only a SHA-256 of each code or token is used as a store key, so a leaked
store dump holds no usable credential. Records expire by themselves.

* A code (192 random bits) is single use (`StoreTake`, atomic on Redis),
  lives `hub_code_ttl` seconds (60 by default), and is bound to its client,
  its redirect URL and the site's `state`.
* Redeeming a code twice revokes every token it produced (RFC 9700 §4.5):
  the tokens of one login form a family, and a revoked family is refused.
* Refresh tokens rotate on use; presenting a used one revokes its family
  (RFC 9700 §4.14.2).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import secrets
from typing import Any

from ..config import Settings
from ..core.effects import Flow, store_get, store_put, store_take
from ..identity import Identity
from .errors import GrantError

CODE_BYTES = 24
TOKEN_BYTES = 32


@dataclasses.dataclass(frozen=True, slots=True)
class Grant:
    """What a code or token stands for."""

    client_id: str
    identity: Identity
    family: str

    def dump(self, **extra: str) -> str:
        data = {"c": self.client_id, "f": self.family, "id": self.identity.to_dict(), **extra}
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def load(cls, raw: str) -> tuple[Grant, dict[str, Any]]:
        data = json.loads(raw)
        return cls(str(data["c"]), Identity.from_dict(data["id"]), str(data["f"])), data


@dataclasses.dataclass(frozen=True, slots=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int


def _key(kind: str, secret: str) -> str:
    return f"hub:{kind}:{hashlib.sha256(secret.encode('utf-8')).hexdigest()}"


class HubTokens:
    def __init__(self, settings: Settings) -> None:
        self.code_ttl = settings.hub_code_ttl
        self.token_ttl = settings.hub_token_ttl
        self.refresh_ttl = settings.hub_refresh_ttl

    def issue_code(
        self, client_id: str, redirect_url: str, state: str, identity: Identity
    ) -> Flow[str]:
        code = secrets.token_urlsafe(CODE_BYTES)
        grant = Grant(client_id, identity, secrets.token_urlsafe(16))
        yield from store_put(_key("code", code), grant.dump(r=redirect_url, s=state), self.code_ttl)
        return code

    def redeem_code(
        self, code: str, client_id: str, *, state: str | None, redirect_url: str | None
    ) -> Flow[IssuedTokens]:
        grant, data = yield from self._take_once("code", code, "code")
        if grant.client_id != client_id:
            yield from self._revoke(grant.family)
            raise GrantError("invalid_grant", "the code was issued to another client")
        if redirect_url is not None and redirect_url != data.get("r"):
            raise GrantError("invalid_grant", "redirect_url does not match the authorization")
        if state is not None and state != data.get("s"):
            raise GrantError("invalid_grant", "state does not match the authorization")
        return (yield from self._issue(grant))

    def refresh(self, refresh_token: str, client_id: str) -> Flow[IssuedTokens]:
        grant, _ = yield from self._take_once("refresh", refresh_token, "refresh token")
        if grant.client_id != client_id:
            raise GrantError("invalid_grant", "the refresh token belongs to another client")
        if (yield from self._revoked(grant.family)):
            raise GrantError("invalid_grant", "the tokens of this login were revoked")
        return (yield from self._issue(grant))

    def identity(self, access_token: str) -> Flow[tuple[str, Identity] | None]:
        """The client and person an access token stands for, or None."""
        raw = yield from store_get(_key("access", access_token))
        if raw is None:
            return None
        grant, _ = Grant.load(raw)
        if (yield from self._revoked(grant.family)):
            return None
        return grant.client_id, grant.identity

    def _take_once(self, kind: str, secret: str, what: str) -> Flow[tuple[Grant, dict[str, Any]]]:
        """Take a code or refresh token (single use). Presenting one that was already used
        revokes every token of its login: one of the two presenters stole it."""
        raw = yield from store_take(_key(kind, secret))
        if raw is None:
            family = yield from store_get(_key(f"{kind}-used", secret))
            if family is not None:
                yield from self._revoke(family)
                raise GrantError("invalid_grant", f"the {what} was already used; tokens revoked")
            raise GrantError("invalid_grant", f"the {what} is unknown or expired")
        grant, data = Grant.load(raw)
        yield from store_put(_key(f"{kind}-used", secret), grant.family, self.refresh_ttl)
        return grant, data

    def _issue(self, grant: Grant) -> Flow[IssuedTokens]:
        access = secrets.token_urlsafe(TOKEN_BYTES)
        refresh = secrets.token_urlsafe(TOKEN_BYTES)
        yield from store_put(_key("access", access), grant.dump(), self.token_ttl)
        yield from store_put(_key("refresh", refresh), grant.dump(), self.refresh_ttl)
        return IssuedTokens(access, refresh, self.token_ttl)

    def _revoke(self, family: str) -> Flow[None]:
        yield from store_put(f"hub:family-revoked:{family}", "1", self.refresh_ttl)

    def _revoked(self, family: str) -> Flow[bool]:
        return (yield from store_get(f"hub:family-revoked:{family}")) is not None
