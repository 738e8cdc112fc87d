"""`dingmw check`: what is wrong in the environment, and (with `--live`) proof of the credentials.

The live check is a flow like any other: it yields the token requests and a
driver performs them, so it exercises the same code a login does.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping

from . import declare
from .config import Settings
from .core.effects import Flow, http
from .errors import UpstreamError
from .providers.calls import api, as_str, build, oapi

APP_TOKEN_CALL = "oauth2/accessToken"  # noqa: S105  # a call name, not a secret
SNS_GETTOKEN_CALL = "sns/gettoken"
CORP_GETTOKEN_CALL = "gettoken"


def describe(settings: Settings, environ: Mapping[str, str] | None = None) -> list[str]:
    """The settings as `dingmw check` prints them: each variable that is set (or differs from
    its default), then what follows from them. A secret shows only its length."""
    rows = declare.shown(settings, environ)
    width = max((len(name) for name, _ in rows), default=0)
    lines = [f"{name.ljust(width)}  {value}" for name, value in rows]
    if settings.flow != "hub":
        lines.append(f"QR widget script: {settings.widget_script_url}")
    return lines


def problems(environ: Mapping[str, str] | None = None) -> tuple[Settings | None, list[str]]:
    """Every problem of the environment at once: malformed or missing values, rules over
    several settings, and unknown `DINGMW_*` variables (with the closest known name)."""
    settings, found = declare.problems(Settings, environ)
    env = os.environ if environ is None else environ
    return settings, found + declare.unknown_variables(env)


def _token_ok(call: str, token: str | None) -> str:
    if not token:
        raise UpstreamError(call, "the reply has no token")
    return f"{call}: credentials accepted"


def hub_credentials(settings: Settings) -> Flow[str]:
    """Prove the site's client id and secret at the hub: a made-up code must be refused
    as `invalid_grant` (the client was accepted), not as `invalid_client`."""
    call = "hub/token"
    basic = base64.b64encode(f"{settings.app_key}:{settings.app_secret}".encode()).decode()
    request = build(
        call,
        "POST",
        f"{settings.hub_url}/dingtalk/token",
        timeout=settings.http_timeout,
        headers={"authorization": f"Basic {basic}", "content-type": "text/plain"},
        content=b"code=dingmw-check-not-a-code&state=",
    )
    response = yield from http(request)
    try:
        error = response.json().get("error")
    except ValueError:
        error = None
    if response.status_code == 400 and error == "invalid_grant":
        return f"{call}: client {settings.app_key} accepted by the hub"
    if response.status_code == 401:
        raise UpstreamError(call, "the hub refused this client id or secret (invalid_client)")
    raise UpstreamError(call, f"unexpected answer from the hub: HTTP {response.status_code}")


def live_check(settings: Settings) -> Flow[list[str]]:
    """Fetch the tokens the configured flow needs; each line says what was proven."""
    s = settings
    results: list[str] = []
    if s.flow == "oauth2":
        data = yield from api(
            APP_TOKEN_CALL,
            build(
                APP_TOKEN_CALL,
                "POST",
                f"{s.api_url}/v1.0/oauth2/accessToken",
                timeout=s.http_timeout,
                json_body={"appKey": s.app_key, "appSecret": s.app_secret},
            ),
        )
        results.append(_token_ok(APP_TOKEN_CALL, as_str(data.get("accessToken"))))
    elif s.flow in ("sns", "bycode"):
        data = yield from oapi(
            SNS_GETTOKEN_CALL,
            build(
                SNS_GETTOKEN_CALL,
                "GET",
                f"{s.oapi_url}/sns/gettoken",
                timeout=s.http_timeout,
                params={"appid": s.app_key, "appsecret": s.app_secret},
            ),
        )
        results.append(_token_ok(SNS_GETTOKEN_CALL, as_str(data.get("access_token"))))
    elif s.flow == "hub":
        results.append((yield from hub_credentials(s)))
    if s.enrich == "detail" or s.corp_id:
        key, secret = s.corp_credentials
        data = yield from oapi(
            CORP_GETTOKEN_CALL,
            build(
                CORP_GETTOKEN_CALL,
                "GET",
                f"{s.oapi_url}/gettoken",
                timeout=s.http_timeout,
                params={"appkey": key, "appsecret": secret},
            ),
        )
        results.append(_token_ok(CORP_GETTOKEN_CALL, as_str(data.get("access_token"))))
    return results
