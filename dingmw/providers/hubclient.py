"""DINGMW_FLOW=hub: log in through a dingmw hub (seed 002, CONTRACT §6).

Browser: the login route sends the person straight to
`{HUB}/dingtalk/authorize?redirect_url=&client_id=&state=` (the hub shows the
QR). Callback: the hub's one-time `code` and this site's `state`. Server:
`POST {HUB}/dingtalk/token` (HTTP Basic with this site's client id and
secret, `text/plain` body `code=…&state=…`) → `GET {HUB}/dingtalk/userinfo` with
`Authorization: <access_token>`, exactly as seed 002 writes them.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from urllib.parse import quote, urlencode

import httpx

from ..config import Settings
from ..core.effects import CALL_EXTENSION, Flow, http
from ..errors import UpstreamError
from ..identity import Identity
from . import LoginWidget
from .calls import as_str
from .registry import LoginFlow

TOKEN_CALL = "hub/token"  # noqa: S105  # a call name, not a secret
USERINFO_CALL = "hub/userinfo"
HUB_FLOW = "hub"


class HubProvider:
    flow = HUB_FLOW

    def __init__(self, settings: Settings, clock: Callable[[], float]) -> None:
        if settings.hub_url is None:  # pragma: no cover - Settings refuses this
            raise ValueError("DINGMW_HUB_URL is required")
        self._s = settings
        self._hub = settings.hub_url
        credentials = f"{settings.app_key}:{settings.app_secret}".encode()
        self._basic = "Basic " + base64.b64encode(credentials).decode("ascii")

    def widget(self, *, state: str, redirect_uri: str) -> LoginWidget:
        query = urlencode(
            {"redirect_url": redirect_uri, "client_id": self._s.app_key, "state": state}
        )
        return LoginWidget(
            widget="redirect",
            authorize_url=f"{self._hub}/dingtalk/authorize?{query}",
            script_url=None,
            login_origin=self._hub,
        )

    def code_from(self, params: Mapping[str, str]) -> str | None:
        return params.get("code") or None

    def _request(
        self, call: str, method: str, path: str, headers: dict[str, str], content: bytes = b""
    ) -> httpx.Request:
        return httpx.Request(
            method,
            f"{self._hub}{path}",
            headers={"accept": "application/json", **headers},
            content=content or None,
            extensions={
                CALL_EXTENSION: call,
                "timeout": httpx.Timeout(self._s.http_timeout).as_dict(),
            },
        )

    def _json(self, call: str, response: httpx.Response) -> dict[str, object]:
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise UpstreamError(call, f"HTTP {response.status_code}, body is not a JSON object")
        if not response.is_success:
            error = str(data.get("error") or f"HTTP {response.status_code}")
            description = str(data.get("error_description") or "")
            raise UpstreamError(call, f"{error}: {description}".strip(": "))
        return data

    def _token_request(self, code: str, state: str) -> httpx.Request:
        """The hub's token call as the seed makes it: this client's credentials in Basic, the
        code and state percent-encoded in a text/plain body (`%20` for a space: the hub reads
        a `+` there as itself, as the seed's plain string means it)."""
        return self._request(
            TOKEN_CALL,
            "POST",
            "/dingtalk/token",
            {"authorization": self._basic, "content-type": "text/plain"},
            urlencode({"code": code, "state": state}, quote_via=quote).encode(),
        )

    def exchange(self, code: str, *, redirect_uri: str, state: str = "") -> Flow[Identity]:
        response = yield from http(self._token_request(code, state))
        token = as_str(self._json(TOKEN_CALL, response).get("access_token"))
        if token is None:
            raise UpstreamError(TOKEN_CALL, "the reply has no access_token")
        response = yield from http(
            self._request(
                USERINFO_CALL,
                "GET",
                "/dingtalk/userinfo",
                {"authorization": token},  # the seed's form: the bare token
            )
        )
        data = self._json(USERINFO_CALL, response)
        try:
            identity = Identity.from_dict({**data, "flow": HUB_FLOW})
        except ValueError as exc:
            raise UpstreamError(USERINFO_CALL, f"bad identity: {exc}") from None
        return identity


def hub_credentials_probe(settings: Settings) -> Flow[str]:
    """`dingmw check --live`: prove the site's client id and secret at the hub. A made-up code
    must be refused as `invalid_grant` (the client was accepted), not as `invalid_client`."""
    provider = HubProvider(settings, lambda: 0.0)
    response = yield from http(provider._token_request("dingmw-check-not-a-code", ""))
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    if response.status_code == 400 and error == "invalid_grant":
        return f"{TOKEN_CALL}: client {settings.app_key} accepted by the hub"
    if response.status_code == 401:
        raise UpstreamError(TOKEN_CALL, "the hub refused this client id or secret (invalid_client)")
    raise UpstreamError(TOKEN_CALL, f"unexpected answer from the hub: HTTP {response.status_code}")


def _needs_hub_url(settings: Settings) -> str | None:
    if not settings.hub_url:
        return "DINGMW_HUB_URL is required when DINGMW_FLOW=hub"
    return None


FLOW = LoginFlow(
    name=HUB_FLOW,
    make=HubProvider,
    probe=hub_credentials_probe,
    rules=(_needs_hub_url,),
    gives_corp=True,  # the hub passes on what it knows (its own enrichment or allow-lists)
    gives_departments=True,
    describe=lambda s: [f"hub: {s.hub_url} (this site is client {s.app_key})"],
    remote=lambda s: s.hub_url,
)
