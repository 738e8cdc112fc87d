"""The sites registered at the hub (`DINGMW_HUB_CLIENTS`): lookups and client authentication.

Redirect URLs match exactly (no prefix, pattern or normalisation). Client
secrets are compared in constant time, also for an unknown client.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Iterable, Iterator

from ..config import HubClient
from ..errors import BadRequestError
from .errors import GrantError

_DUMMY_SECRET = "dingmw-hub-dummy-secret-for-constant-time"  # noqa: S105  # never matches


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

    def basic(self, authorization: str) -> HubClient:
        """The client an `Authorization: Basic` header authenticates; `GrantError` (401) else."""
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic" or not encoded:
            raise GrantError("invalid_client", "HTTP Basic client authentication is required", 401)
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise GrantError(
                "invalid_client", "the Authorization header is malformed", 401
            ) from None
        client_id, sep, secret = decoded.partition(":")
        if not sep:
            raise GrantError("invalid_client", "unknown client or wrong secret", 401)
        return self.secret(client_id, secret)

    def secret(self, client_id: str, secret: str) -> HubClient:
        """The client whose secret is `secret` (constant time); `GrantError` (401) else."""
        client = self.get(client_id)
        expected = client.client_secret if client is not None else _DUMMY_SECRET
        matches = hmac.compare_digest(secret.encode("utf-8"), expected.encode("utf-8"))
        if client is None or not matches:
            raise GrantError("invalid_client", "unknown client or wrong secret", 401)
        return client
