"""DINGMW_FLOW=sns: the legacy QR login of seed 001 (dingtalk-api.md §1).

Browser: ddLogin.js draws the QR in an iframe from `{LOGIN}`; after the scan
the frame posts a `loginTmpCode` and the login page navigates to the
`sns_authorize` URL with `&loginTmpCode=` appended. Callback: `code`.
Server: `sns/gettoken` (the app token, cached) → `sns/get_persistent_code`
→ `sns/get_sns_token` → `sns/getuserinfo`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlencode

from ..config import DDLOGIN_SCRIPT_URL, Settings
from ..core.effects import Flow
from ..errors import UpstreamError
from ..identity import Identity
from . import LoginWidget
from .calls import as_str, build, fetch_oapi_token, oapi, post_with_app_token
from .registry import LoginFlow

GETTOKEN_CALL = "sns/gettoken"
PERSISTENT_CALL = "sns/get_persistent_code"
SNS_TOKEN_CALL = "sns/get_sns_token"  # noqa: S105  # a call name, not a secret
USERINFO_CALL = "sns/getuserinfo"


def sns_authorize_url(
    settings: Settings, *, state: str, redirect_uri: str, page: str = "oauth2/sns_authorize"
) -> str:
    query = urlencode(
        {
            "appid": settings.app_key,
            "response_type": "code",
            "scope": "snsapi_login",
            "state": state,
            "redirect_uri": redirect_uri,
        },
        quote_via=quote,
    )
    return f"{settings.oapi_url}/connect/{page}?{query}"


def ddlogin_widget(settings: Settings, *, state: str, redirect_uri: str) -> LoginWidget:
    return LoginWidget(
        widget="ddlogin",
        authorize_url=sns_authorize_url(settings, state=state, redirect_uri=redirect_uri),
        script_url=settings.widget_script_url,
        login_origin=settings.login_origin,
        # DingTalk's hosted QR page for the same login (dingtalk-api.md §1.2).
        hosted_url=sns_authorize_url(
            settings, state=state, redirect_uri=redirect_uri, page="qrconnect"
        ),
    )


def identity_from_user_info(call: str, user_info: object, flow: str) -> Identity:
    if not isinstance(user_info, dict):
        raise UpstreamError(call, "the reply has no user_info")
    unionid = as_str(user_info.get("unionid"))
    if unionid is None:
        raise UpstreamError(call, "user_info has no unionid")
    return Identity(
        unionid=unionid,
        openid=as_str(user_info.get("openid")),
        nick=as_str(user_info.get("nick")),
        flow=flow,
    )


class SnsProvider:
    flow = "sns"

    def __init__(self, settings: Settings, clock: Callable[[], float]) -> None:
        self._s = settings
        self._token_key = f"apptoken:sns:{settings.app_key}"

    def widget(self, *, state: str, redirect_uri: str) -> LoginWidget:
        return ddlogin_widget(self._s, state=state, redirect_uri=redirect_uri)

    def code_from(self, params: Mapping[str, str]) -> str | None:
        return params.get("code") or None

    def _fetch_token(self) -> Flow[tuple[str, float]]:
        params = {"appid": self._s.app_key, "appsecret": self._s.app_secret}
        return fetch_oapi_token(self._s, GETTOKEN_CALL, "/sns/gettoken", params)

    def _post(self, call: str, path: str, body: dict[str, str]) -> Flow[dict[str, Any]]:
        return post_with_app_token(
            self._s, call, path, body, cache_key=self._token_key, fetch=self._fetch_token
        )

    def exchange(self, code: str, *, redirect_uri: str, state: str = "") -> Flow[Identity]:
        s = self._s
        persistent = yield from self._post(
            PERSISTENT_CALL, "/sns/get_persistent_code", {"tmp_auth_code": code}
        )
        openid = as_str(persistent.get("openid"))
        persistent_code = as_str(persistent.get("persistent_code"))
        if openid is None or persistent_code is None:
            raise UpstreamError(PERSISTENT_CALL, "the reply has no openid or persistent_code")
        sns = yield from self._post(
            SNS_TOKEN_CALL,
            "/sns/get_sns_token",
            {"openid": openid, "persistent_code": persistent_code},
        )
        sns_token = as_str(sns.get("sns_token"))
        if sns_token is None:
            raise UpstreamError(SNS_TOKEN_CALL, "the reply has no sns_token")
        info = yield from oapi(
            USERINFO_CALL,
            build(
                USERINFO_CALL,
                "GET",
                f"{s.oapi_url}/sns/getuserinfo",
                timeout=s.http_timeout,
                params={"sns_token": sns_token},
            ),
        )
        return identity_from_user_info(USERINFO_CALL, info.get("user_info"), self.flow)


def app_token_probe(settings: Settings) -> Flow[str]:
    """`dingmw check --live`: the login app's appId and appSecret get an app token."""
    params = {"appid": settings.app_key, "appsecret": settings.app_secret}
    yield from fetch_oapi_token(settings, GETTOKEN_CALL, "/sns/gettoken", params)
    return f"{GETTOKEN_CALL}: credentials accepted"


FLOW = LoginFlow(
    name="sns",
    make=SnsProvider,
    probe=app_token_probe,
    widget_script=DDLOGIN_SCRIPT_URL,
    demo_script="/dinglogin/ddLogin.js",
    describe=lambda s: [f"QR widget script: {s.widget_script_url}"],
)
