"""An authorization request a site made at `/authorize`, checked, and carried through the login.

Two dialects share the endpoint: seed 002's (`redirect_url`, `client_id`,
`state`) and the standard one of OAuth 2.0 / OpenID Connect (`redirect_uri`,
`response_type=code`, `scope`, `nonce`, PKCE), told apart by `redirect_url`.

Until the client and its redirect URL are known to be registered, an error is
a page on the hub (never a redirect); afterwards, a standard-dialect error goes
back to the client's redirect URI (RFC 6749 §4.1.2.1).

When the person has no hub session yet, the request travels in the hub's
signed, browser-bound login state (`core.state`), so the callback knows what
it was for without parsing any URL again.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

from ..errors import BadRequestError, StateError
from .registry import Registry
from .settings import SCOPES

MAX_STATE = 512
MAX_NONCE = 512
_CHALLENGE_RE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Authorization:
    """A checked authorization request.

    `scope` is None for the seed dialect, else the granted scopes (space-separated).
    `fresh`: log in at DingTalk again even with a hub session (`prompt=login`, `max_age`);
    `silent`: never show a login (`prompt=none`)."""

    client_id: str
    redirect_url: str
    state: str
    scope: str | None = None
    nonce: str = ""
    code_challenge: str = ""
    fresh: bool = False
    silent: bool = False

    @property
    def standard(self) -> bool:
        return self.scope is not None

    def dump(self) -> dict[str, str]:
        """For the login state (`PendingLogin.extra`)."""
        data = {"c": self.client_id, "r": self.redirect_url, "s": self.state}
        if self.scope is not None:
            data.update(sc=self.scope, n=self.nonce, cc=self.code_challenge)
        return data

    @classmethod
    def load(cls, data: Mapping[str, str]) -> Authorization:
        try:
            return cls(
                client_id=data["c"],
                redirect_url=data["r"],
                state=data["s"],
                scope=data.get("sc"),
                nonce=data.get("n", ""),
                code_challenge=data.get("cc", ""),
            )
        except KeyError:  # a login state written by another version
            raise StateError("state_unknown") from None


class AuthorizationError(Exception):
    """An error sent back to the client's registered redirect URI (RFC 6749 §4.1.2.1)."""

    def __init__(self, error: str, description: str, redirect_url: str, state: str | None):
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.redirect_url = redirect_url
        self.state = state


def is_standard(query: Mapping[str, str]) -> bool:
    return "redirect_url" not in query and "redirect_uri" in query


def parse(query: Mapping[str, str], clients: Registry, *, oidc: bool) -> Authorization:
    """The checked request of either dialect; `BadRequestError` (a page) or
    `AuthorizationError` (a redirect) when it is refused. `oidc`: the hub has signing keys."""
    state = query.get("state")
    if state is not None and len(state) > MAX_STATE:
        raise BadRequestError("bad_request", "state is too long")
    if not is_standard(query):
        client = clients.redirect(query.get("client_id"), query.get("redirect_url"))
        if client.public:  # the seed's dialect has no PKCE, and a public client has no secret
            raise BadRequestError(
                "bad_request",
                "this client is public: it must use the standard dialect (redirect_uri) with "
                "PKCE (code_challenge, S256)",
            )
        return Authorization(
            client_id=client.client_id, redirect_url=str(query["redirect_url"]), state=state or ""
        )
    redirect_uri = query.get("redirect_uri")
    client = clients.redirect(query.get("client_id"), redirect_uri)

    def refuse(error: str, description: str) -> AuthorizationError:
        return AuthorizationError(error, description, str(redirect_uri), state)

    for name, error in (
        ("request", "request_not_supported"),
        ("request_uri", "request_uri_not_supported"),
        ("registration", "registration_not_supported"),
    ):
        if name in query:
            raise refuse(error, f"the {name} parameter is not supported")
    if query.get("response_type") != "code":
        raise refuse("unsupported_response_type", "only response_type=code is supported")
    if query.get("response_mode", "query") != "query":
        raise refuse("invalid_request", "only response_mode=query is supported")
    requested = query.get("scope", "").split()
    if "openid" in requested and not oidc:
        raise refuse(
            "invalid_scope", "this hub has no OpenID Connect signing key (DINGMW_HUB_OIDC_KEY_FILE)"
        )
    scope = " ".join(s for s in SCOPES if s in requested and client.allows(s))
    challenge = query.get("code_challenge", "")
    method = query.get("code_challenge_method")
    if challenge:
        if method != "S256":
            raise refuse("invalid_request", "code_challenge_method must be S256")
        if not _CHALLENGE_RE.match(challenge):
            raise refuse("invalid_request", "code_challenge is malformed")
    elif method is not None:
        raise refuse("invalid_request", "code_challenge_method without code_challenge")
    elif client.public:
        raise refuse("invalid_request", "this client must use PKCE (code_challenge, S256)")
    nonce = query.get("nonce", "")
    if len(nonce) > MAX_NONCE:
        raise refuse("invalid_request", "nonce is too long")
    prompt = set(query.get("prompt", "").split())
    if "none" in prompt and len(prompt) > 1:
        raise refuse("invalid_request", "prompt=none cannot be combined with other values")
    max_age = query.get("max_age")
    if max_age is not None and not max_age.isdigit():
        raise refuse("invalid_request", "max_age must be a number of seconds")
    return Authorization(
        client_id=client.client_id,
        redirect_url=str(redirect_uri),
        state=state or "",
        scope=scope,
        nonce=nonce,
        code_challenge=challenge,
        fresh="login" in prompt or max_age is not None,
        silent="none" in prompt,
    )
