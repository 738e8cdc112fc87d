"""DINGMW_FLOW=oauth2: DingTalk's current login (dingtalk-api.md §4, §5).

Browser: `{LOGIN}/oauth2/auth?...&prompt=consent`, embedded with DTFrameLogin
on the login page. Callback: `authCode` (falling back to `code`). Server:
`POST /v1.0/oauth2/userAccessToken` → `GET /v1.0/contact/users/me` with the
`x-acs-dingtalk-access-token` header.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from urllib.parse import quote, urlencode

from ..config import DTFRAME_SCRIPT_URL, Settings
from ..core.effects import Flow
from ..errors import UpstreamError
from ..identity import Identity
from . import LoginWidget
from .calls import api, as_str, build
from .registry import LoginFlow

TOKEN_CALL = "oauth2/userAccessToken"  # noqa: S105  # a call name, not a secret
ME_CALL = "contact/users/me"


class OAuth2Provider:
    flow = "oauth2"

    def __init__(self, settings: Settings, clock: Callable[[], float]) -> None:
        self._s = settings
        # `corpid` makes DingTalk return the organisation the person chose,
        # which the corp allow-list needs.
        self._scope = "openid corpid" if settings.needs_corp_membership else "openid"

    def authorize_url(self, *, state: str, redirect_uri: str) -> str:
        query = urlencode(
            {
                "redirect_uri": redirect_uri,
                "response_type": "code",
                "client_id": self._s.app_key,
                "scope": self._scope,
                "prompt": "consent",
                "state": state,
            },
            quote_via=quote,
        )
        return f"{self._s.login_url}/oauth2/auth?{query}"

    def widget(self, *, state: str, redirect_uri: str) -> LoginWidget:
        authorize_url = self.authorize_url(state=state, redirect_uri=redirect_uri)
        return LoginWidget(
            widget="dtframe",
            hosted_url=authorize_url,  # the same page, full-window instead of in the frame
            authorize_url=authorize_url,
            script_url=self._s.widget_script_url,
            login_origin=self._s.login_origin,
            extra={
                "client_id": self._s.app_key,
                "redirect_uri": redirect_uri,
                "scope": self._scope,
            },
        )

    def code_from(self, params: Mapping[str, str]) -> str | None:
        return params.get("authCode") or params.get("code") or None

    def exchange(self, code: str, *, redirect_uri: str, state: str = "") -> Flow[Identity]:
        s = self._s
        token = yield from api(
            TOKEN_CALL,
            build(
                TOKEN_CALL,
                "POST",
                f"{s.api_url}/v1.0/oauth2/userAccessToken",
                timeout=s.http_timeout,
                json_body={
                    "clientId": s.app_key,
                    "clientSecret": s.app_secret,
                    "code": code,
                    "grantType": "authorization_code",
                },
            ),
        )
        access_token = as_str(token.get("accessToken"))
        if access_token is None:
            raise UpstreamError(TOKEN_CALL, "the reply has no accessToken")
        me = yield from api(
            ME_CALL,
            build(
                ME_CALL,
                "GET",
                f"{s.api_url}/v1.0/contact/users/me",
                timeout=s.http_timeout,
                headers={"x-acs-dingtalk-access-token": access_token},
            ),
        )
        unionid = as_str(me.get("unionId"))
        if unionid is None:
            raise UpstreamError(ME_CALL, "the reply has no unionId")
        return Identity(
            unionid=unionid,
            openid=as_str(me.get("openId")),
            nick=as_str(me.get("nick")),
            email=as_str(me.get("email")),
            mobile=as_str(me.get("mobile")),
            avatar_url=as_str(me.get("avatarUrl")),
            corp_id=as_str(token.get("corpId")),
            flow=self.flow,
        )


APP_TOKEN_CALL = "oauth2/accessToken"  # noqa: S105  # a call name, not a secret


def app_token_probe(settings: Settings) -> Flow[str]:
    """`dingmw check --live`: the login app's key and secret get an app token."""
    data = yield from api(
        APP_TOKEN_CALL,
        build(
            APP_TOKEN_CALL,
            "POST",
            f"{settings.api_url}/v1.0/oauth2/accessToken",
            timeout=settings.http_timeout,
            json_body={"appKey": settings.app_key, "appSecret": settings.app_secret},
        ),
    )
    if not as_str(data.get("accessToken")):
        raise UpstreamError(APP_TOKEN_CALL, "the reply has no token")
    return f"{APP_TOKEN_CALL}: credentials accepted"


FLOW = LoginFlow(
    name="oauth2",
    make=OAuth2Provider,
    probe=app_token_probe,
    gives_corp=True,  # the `openid corpid` scope returns the organisation chosen
    widget_script=DTFRAME_SCRIPT_URL,
    demo_script="/h5-dingtalk-login/ddlogin.js",
    describe=lambda s: [f"QR widget script: {s.widget_script_url}"],
)
