"""The sites registered at the hub (`DINGMW_HUB_CLIENTS`): lookups and client authentication.

Redirect URLs match exactly (no prefix, pattern or normalisation). Client
secrets are compared in constant time, also for an unknown client. A client
authenticates with HTTP Basic (`client_secret_basic`, the seed's way), with
`client_id` and `client_secret` in the body (`client_secret_post`), or, when it
is registered as public, with its `client_id` alone (`none`, PKCE required).
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Iterable, Iterator, Mapping
from urllib.parse import unquote_plus

from ..errors import BadRequestError
from .errors import GrantError
from .settings import HubClient

_DUMMY_SECRET = "dingmw-hub-dummy-secret-for-constant-time"  # noqa: S105  # never matches
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "none")


class Registry:
    def __init__(self, clients: Iterable[HubClient]) -> None:
        self._clients = {c.client_id: c for c in clients}

    def __iter__(self) -> Iterator[HubClient]:
        return iter(self._clients.values())

    def get(self, client_id: str | None) -> HubClient | None:
        return self._clients.get(client_id or "")

    def redirect(self, client_id: str | None, redirect_url: str | None) -> HubClient:
        """The client, when `redirect_url` is one of its registered URLs; else a 400."""
        client = self.get(client_id)
        if client is None:
            raise BadRequestError("unknown_client", "client_id is not registered at this hub")
        if redirect_url is None or redirect_url not in client.redirect_urls:
            raise BadRequestError(
                "redirect_not_registered", "redirect_url is not registered for this client"
            )
        return client

    def authenticate(self, authorization: str, params: Mapping[str, str]) -> HubClient:
        """The client a token request authenticates as; `GrantError` (401) when none does."""
        posted = "client_secret" in params
        if authorization:
            if posted:
                raise GrantError("invalid_request", "use one client authentication method")
            client = self._basic(authorization)
        elif posted:
            client = self._secret(params.get("client_id", ""), params["client_secret"])
        else:
            public = self.get(params.get("client_id"))
            if public is None or not public.public:
                raise GrantError(
                    "invalid_client",
                    "client authentication is required (HTTP Basic, or client_id and "
                    "client_secret in the body)",
                    401,
                )
            client = public
        if params.get("client_id", client.client_id) != client.client_id:
            raise GrantError("invalid_client", "client_id does not match the credentials", 401)
        return client

    def _basic(self, authorization: str) -> HubClient:
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic" or not encoded:
            raise GrantError("invalid_client", "HTTP Basic client authentication is required", 401)
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except ValueError:  # not Base64 (non-ASCII too), or not UTF-8
            raise GrantError(
                "invalid_client", "the Authorization header is malformed", 401
            ) from None
        client_id, sep, secret = decoded.partition(":")
        if not sep:
            raise GrantError("invalid_client", "unknown client or wrong secret", 401)
        try:
            return self._secret(client_id, secret)
        except GrantError:
            # RFC 6749 §2.3.1: form-encoded before Base64 (the seed's clients do not encode).
            unquoted = unquote_plus(client_id), unquote_plus(secret)
            if unquoted == (client_id, secret):
                raise
            return self._secret(*unquoted)

    def _secret(self, client_id: str, secret: str) -> HubClient:
        client = self.get(client_id)
        usable = client is not None and not client.public
        expected = client.client_secret if client is not None and usable else _DUMMY_SECRET
        matches = hmac.compare_digest(secret.encode("utf-8"), expected.encode("utf-8"))
        if client is None or not usable or not matches:
            raise GrantError("invalid_client", "unknown client or wrong secret", 401)
        return client
