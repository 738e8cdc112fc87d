"""The hub's one-time codes, access tokens and refresh tokens, as store effects.

Only a SHA-256 of each code or token is used as a store key, so a leaked
store dump holds no usable credential. Records expire by themselves.

* A code (192 random bits) is single use (`StoreTake`, atomic on Redis),
  lives `code_ttl` seconds (60 by default), and is bound to its client, its
  redirect URL, the site's `state` and (OpenID Connect) its PKCE challenge.
* The tokens of one login form a family. Redeeming a code twice, or presenting
  a spent refresh token, revokes the family (RFC 9700 §4.5, §4.14.2).
* Every grant also records the hub session it came from (`sid`): logging out
  of the hub revokes every token issued in that session.
* Refresh tokens rotate on use.

Independent store operations go together (`gather`), so a store with
batches (Redis: a pipeline) serves a grant in two round trips: take the
code or refresh token; then mark it used, write the new access and refresh
tokens and read the login's revocation markers, all at once (tokens written
for a revoked login are refused at every use, since every use reads the same
markers, and were never shown to anyone). Userinfo takes two.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import re
import secrets
from typing import Any

from ..core.effects import Flow, gather, store_get, store_put, store_reads, store_take
from ..identity import Identity
from .errors import GrantError
from .settings import SCOPES

CODE_BYTES = 24
TOKEN_BYTES = 32
_VERIFIER_RE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Grant:
    """What a code or token stands for.

    `scope` is None for the seed's dialect; otherwise the granted scopes (space-separated),
    and the hub answers with standard OAuth 2.0 / OpenID Connect names."""

    client_id: str
    identity: Identity
    family: str
    sid: str = ""
    scope: str | None = None
    auth_time: int | None = None

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset((self.scope or "").split())

    def dump(self, **extra: str) -> str:
        data: dict[str, Any] = {
            "c": self.client_id,
            "f": self.family,
            "sid": self.sid,
            "id": self.identity.to_dict(),
            **extra,
        }
        if self.scope is not None:
            data["sc"] = self.scope
        if self.auth_time is not None:
            data["at"] = self.auth_time
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def load(cls, raw: str) -> tuple[Grant, dict[str, Any]]:
        data = json.loads(raw)
        scope = data.get("sc")
        auth_time = data.get("at")
        grant = cls(
            client_id=str(data["c"]),
            identity=Identity.from_dict(data["id"]),
            family=str(data["f"]),
            sid=str(data.get("sid", "")),
            scope=str(scope) if scope is not None else None,
            auth_time=int(auth_time) if auth_time is not None else None,
        )
        return grant, data


@dataclasses.dataclass(frozen=True, slots=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int
    grant: Grant
    nonce: str = ""  # the authorization request's, for the first ID token only


def _key(kind: str, secret: str) -> str:
    return f"hub:{kind}:{hashlib.sha256(secret.encode('utf-8')).hexdigest()}"


def pkce_s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class HubTokens:
    def __init__(self, *, code_ttl: int, token_ttl: int, refresh_ttl: int) -> None:
        self.code_ttl = code_ttl
        self.token_ttl = token_ttl
        self.refresh_ttl = refresh_ttl

    def issue_code(
        self,
        grant: Grant,
        *,
        redirect_url: str,
        state: str,
        nonce: str = "",
        code_challenge: str = "",
    ) -> Flow[str]:
        code = secrets.token_urlsafe(CODE_BYTES)
        extra = {"r": redirect_url, "s": state}
        if nonce:
            extra["n"] = nonce
        if code_challenge:
            extra["cc"] = code_challenge
        yield from store_put(_key("code", code), grant.dump(**extra), self.code_ttl)
        return code

    def new_grant(
        self,
        client_id: str,
        identity: Identity,
        *,
        sid: str,
        scope: str | None,
        auth_time: int | None,
    ) -> Grant:
        return Grant(
            client_id=client_id,
            identity=identity,
            family=secrets.token_urlsafe(16),
            sid=sid,
            scope=scope,
            auth_time=auth_time,
        )

    def redeem_code(
        self,
        code: str,
        client_id: str,
        *,
        state: str | None,
        redirect_url: str | None,
        code_verifier: str | None,
        public: bool = False,
    ) -> Flow[IssuedTokens]:
        """Tokens for a code; `public`: the client authenticated with its `client_id` alone,
        so the code must carry a PKCE challenge (it is all that proves the presenter)."""
        grant, data = yield from self._take("code", code, "code")
        try:
            _check_code(
                grant,
                data,
                client_id,
                state=state,
                redirect_url=redirect_url,
                code_verifier=code_verifier,
                public=public,
            )
        except GrantError:
            # Used up all the same; a code shown by another client revokes its login.
            yield from self._used("code", code, grant, revoke=grant.client_id != client_id)
            raise
        revoked = "the hub session of this code has ended"
        return (yield from self._issue("code", code, grant, revoked, str(data.get("n", ""))))

    def refresh(
        self, refresh_token: str, client_id: str, *, scope: str | None = None
    ) -> Flow[IssuedTokens]:
        grant, _ = yield from self._take("refresh", refresh_token, "refresh token")
        if grant.client_id != client_id:
            yield from self._used("refresh", refresh_token, grant, revoke=False)
            raise GrantError("invalid_grant", "the refresh token belongs to another client")
        asked = frozenset(scope.split()) if scope is not None else frozenset()
        if asked:  # RFC 6749 §6: an omitted (or empty) scope is the one granted
            if grant.scope is None or not asked <= grant.scopes:
                # A mistake of its rightful owner, who keeps it: the token is put back (for
                # a whole `refresh_ttl` again, as a successful refresh would have given).
                yield from store_put(_key("refresh", refresh_token), grant.dump(), self.refresh_ttl)
                raise GrantError("invalid_scope", "a refresh may only narrow the scope")
            grant = dataclasses.replace(grant, scope=" ".join(s for s in SCOPES if s in asked))
        revoked = "the tokens of this login were revoked"
        return (yield from self._issue("refresh", refresh_token, grant, revoked))

    def grant_of(self, access_token: str) -> Flow[Grant | None]:
        """What an access token stands for, or None (unknown, expired or revoked)."""
        raw = yield from store_get(_key("access", access_token))
        if raw is None:
            return None
        grant, _ = Grant.load(raw)
        if (yield from self._revoked(grant)):
            return None
        return grant

    def identity(self, access_token: str) -> Flow[tuple[str, Identity] | None]:
        """The client and person an access token stands for, or None."""
        grant = yield from self.grant_of(access_token)
        return None if grant is None else (grant.client_id, grant.identity)

    def end_session(self, sid: str) -> Flow[None]:
        """Revoke every token issued in hub session `sid` (the hub's logout)."""
        yield from store_put(f"hub:sid-revoked:{sid}", "1", self.refresh_ttl)

    def _take(self, kind: str, secret: str, what: str) -> Flow[tuple[Grant, dict[str, Any]]]:
        """Take a code or refresh token (single use): its grant and its record. Presenting one
        that was already used revokes every token of its login: one of the two presenters
        stole it."""
        raw = yield from store_take(_key(kind, secret))
        if raw is None:
            family = yield from store_get(_key(f"{kind}-used", secret))
            if family is not None:
                yield from self._revoke(family)
                raise GrantError("invalid_grant", f"the {what} was already used; tokens revoked")
            raise GrantError("invalid_grant", f"the {what} is unknown or expired")
        return Grant.load(raw)

    def _used(self, kind: str, secret: str, grant: Grant, *, revoke: bool) -> Flow[None]:
        """Mark a taken code or refresh token used (and revoke its login), one round trip."""
        used = self._mark_used(kind, secret, grant)
        if revoke:
            yield from gather(used, self._revoke(grant.family))
        else:
            yield from used

    def _mark_used(self, kind: str, secret: str, grant: Grant) -> Flow[bool]:
        """The record that a code or refresh token was used, naming its login (`_take`)."""
        return store_put(_key(f"{kind}-used", secret), grant.family, self.refresh_ttl)

    def _issue(
        self, kind: str, secret: str, grant: Grant, revoked: str, nonce: str = ""
    ) -> Flow[IssuedTokens]:
        """New tokens for a taken code or refresh token, in one round trip: the taken one
        marked used, both tokens written, the login's revocation markers read. When a marker
        is set the tokens written are dead on arrival (every use of a token reads the same
        markers) and known to nobody: the grant is refused."""
        access = secrets.token_urlsafe(TOKEN_BYTES)
        refresh = secrets.token_urlsafe(TOKEN_BYTES)
        record = grant.dump()
        _, _, _, *markers = yield from gather(
            self._mark_used(kind, secret, grant),
            store_put(_key("access", access), record, self.token_ttl),
            store_put(_key("refresh", refresh), record, self.refresh_ttl),
            *(store_get(key) for key in _revocation_keys(grant)),
        )
        if any(marker is not None for marker in markers):
            raise GrantError("invalid_grant", revoked)
        return IssuedTokens(access, refresh, self.token_ttl, grant, nonce)

    def _revoke(self, family: str) -> Flow[None]:
        yield from store_put(f"hub:family-revoked:{family}", "1", self.refresh_ttl)

    def _revoked(self, grant: Grant) -> Flow[bool]:
        markers = yield from store_reads(_revocation_keys(grant))
        return any(marker is not None for marker in markers)


def _revocation_keys(grant: Grant) -> tuple[str, ...]:
    """The markers that revoke `grant`'s tokens: its login's family, and its hub session."""
    family = f"hub:family-revoked:{grant.family}"
    return (family, f"hub:sid-revoked:{grant.sid}") if grant.sid else (family,)


def _check_code(
    grant: Grant,
    data: dict[str, Any],
    client_id: str,
    *,
    state: str | None,
    redirect_url: str | None,
    code_verifier: str | None,
    public: bool,
) -> None:
    """A taken code's record against the token request that presents it."""
    if grant.client_id != client_id:
        raise GrantError("invalid_grant", "the code was issued to another client")
    if public and data.get("cc") is None:
        raise GrantError("invalid_grant", "a public client's code must come with PKCE")
    if grant.scope is not None and redirect_url is None:
        raise GrantError("invalid_grant", "redirect_uri is required and must match")
    if redirect_url is not None and redirect_url != data.get("r"):
        raise GrantError("invalid_grant", "redirect_url does not match the authorization")
    if state is not None and state != data.get("s"):
        raise GrantError("invalid_grant", "state does not match the authorization")
    challenge = data.get("cc")
    if challenge is not None or code_verifier is not None:
        _check_pkce(challenge, code_verifier)


def _check_pkce(challenge: object, verifier: str | None) -> None:
    """RFC 7636 S256; a verifier without a challenge is refused too (RFC 9700 §2.1.1)."""
    if challenge is None:
        raise GrantError("invalid_grant", "code_verifier sent, but the authorization had no PKCE")
    if verifier is None:
        raise GrantError("invalid_grant", "code_verifier is required (the authorization used PKCE)")
    if not _VERIFIER_RE.match(verifier):
        raise GrantError("invalid_grant", "code_verifier is malformed")
    if not hmac.compare_digest(pkce_s256(verifier), str(challenge)):
        raise GrantError("invalid_grant", "code_verifier does not match the code_challenge")
