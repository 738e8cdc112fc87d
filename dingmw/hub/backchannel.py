"""OpenID Connect Back-Channel Logout 1.0, the hub's side.

When a code is issued to a client with a `backchannel_logout_uri`, the hub
records that the client has a session under the hub session's `sid`. When the
person logs out of the hub, each such client gets a signed logout token
(`typ: logout+jwt`, with `sid` and `sub`) in a form POST, all at once. A client
that does not answer 2xx is logged and otherwise ignored: the logout itself
has happened.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

import httpx

from ..config import Settings
from ..core.effects import CALL_EXTENSION, Flow, gather, http, store_get, store_put
from ..errors import LoginError
from ..identity import Identity
from .oidc import OpenIDProvider
from .registry import Registry
from .settings import HubClient, HubSettings

log = logging.getLogger("dingmw")

CALL = "hub/backchannel_logout"


class BackChannel:
    def __init__(
        self,
        clients: Registry,
        oidc: OpenIDProvider | None,
        settings: Settings,
        hub: HubSettings,
    ) -> None:
        self._clients = tuple(c for c in clients if c.backchannel_logout_uri)
        self._oidc = oidc
        self._timeout = settings.http_timeout
        self._ttl = hub.refresh_ttl

    @property
    def enabled(self) -> bool:
        return self._oidc is not None and bool(self._clients)

    def remember(self, client_id: str, sid: str) -> Flow[None]:
        """Record that `client_id` has a login in hub session `sid` (when it wants to hear)."""
        if sid and self.enabled and any(c.client_id == client_id for c in self._clients):
            yield from store_put(_key(sid, client_id), "1", self._ttl)

    def notify(self, issuer: str, sid: str, identity: Identity) -> Flow[None]:
        """Tell every client with a login in `sid` that the person logged out."""
        if not self.enabled:
            return
        flows = [self._notify_one(issuer, sid, identity, client) for client in self._clients]
        yield from gather(*flows)

    def _notify_one(
        self, issuer: str, sid: str, identity: Identity, client: HubClient
    ) -> Flow[None]:
        if (yield from store_get(_key(sid, client.client_id))) is None:
            return
        assert self._oidc is not None  # noqa: S101  # `enabled` says so
        assert client.backchannel_logout_uri is not None  # noqa: S101  # filtered above
        token = self._oidc.logout_token(issuer, client.client_id, sid, identity.remote_user)
        request = httpx.Request(
            "POST",
            client.backchannel_logout_uri,
            content=urlencode({"logout_token": token}).encode(),
            headers={"content-type": "application/x-www-form-urlencoded"},
            extensions={
                CALL_EXTENSION: CALL,
                "timeout": httpx.Timeout(self._timeout).as_dict(),
            },
        )
        try:
            response = yield from http(request)
        except LoginError as exc:
            log.warning("dingmw hub: back-channel logout to %s failed: %s", client.client_id, exc)
            return
        if not response.is_success:
            log.warning(
                "dingmw hub: back-channel logout to %s answered HTTP %s",
                client.client_id,
                response.status_code,
            )


def _key(sid: str, client_id: str) -> str:
    return f"hub:bcl:{sid}:{client_id}"
