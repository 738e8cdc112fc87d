"""``api.dingtalk.com`` v1.0 endpoints: camelCase JSON, 4xx + ``{code, message, requestid}``.

Sources: dingtalk-api.md §3.2 (app token), §4.2 (userAccessToken), §4.3 (contact/users),
§0 and §10 (header-only token, JSON-only POSTs, error shape).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

from .directory import FakeApp
from .state import REFRESH_TTL, TOKEN_TTL, World
from .wire import Req, Resp, api_error, api_json

Handler = Callable[[World, Req], Resp]

TOKEN_HEADER = "x-acs-dingtalk-access-token"  # noqa: S105 (a header name)


def _bad_client() -> Resp:
    return api_error(400, "invalidClientIdOrSecret", "无效的clientId或者clientSecret")


def _missing(name: str) -> Resp:
    # The gateway's "Missing<param>" style (as in "Missingbody", aliyun/alibabacloud-php-sdk#36);
    # the exact code per parameter is UNCONFIRMED.
    return api_error(400, f"Missing{name}", f"{name} is mandatory for this action.")


def json_body(req: Req) -> tuple[dict[str, Any] | None, Resp | None]:
    if req.content_type() != "application/json" or not req.body:
        return None, _missing("body")
    body = req.json_object()
    if body is None:
        return None, api_error(400, "InvalidParameter.Body", "body is not a valid JSON object.")
    return body, None


def _str(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    return value if isinstance(value, str) else ""


def _client(world: World, key: str, secret: str) -> FakeApp | None:
    app = world.app(key)
    if app is None or not hmac.compare_digest(secret.encode(), app.app_secret.encode()):
        return None
    return app


def user_access_token(world: World, req: Req) -> Resp:
    body, error = json_body(req)
    if body is None:
        return error or _missing("body")
    client_id, client_secret = _str(body, "clientId"), _str(body, "clientSecret")
    grant_type = _str(body, "grantType")
    if not client_id:
        return _missing("clientId")
    if not client_secret:
        return _missing("clientSecret")
    if not grant_type:
        return _missing("grantType")
    app = _client(world, client_id, client_secret)
    if app is None:
        return _bad_client()
    ledger = world.ledger
    if grant_type == "authorization_code":
        code = _str(body, "code")
        if not code:
            return _missing("code")
        grant, _ = ledger.look("authCode", code)
        if grant is None or grant.app_key != app.app_key:
            return api_error(400, "invalidParameter.authCode.notFound", "不合法的临时授权码")
        ledger.take("authCode", code)
        unionid = grant.unionid or ""
        corp_id = grant.corp_id
        refresh = ledger.current(
            "refresh_token",
            (app.app_key, unionid),
            ttl=REFRESH_TTL,
            app_key=app.app_key,
            unionid=unionid,
            corp_id=corp_id,
        )
    elif grant_type == "refresh_token":
        value = _str(body, "refreshToken")
        if not value:
            return _missing("refreshToken")
        found, _ = ledger.look("refresh_token", value)
        if found is None or found.app_key != app.app_key:
            # UNCONFIRMED code; modelled on invalidParameter.authCode.notFound.
            return api_error(400, "invalidParameter.refreshToken.notFound", "不合法的refreshToken")
        refresh = found
        unionid = found.unionid or ""
        corp_id = found.corp_id
    else:
        # UNCONFIRMED code for an unknown grantType.
        return api_error(400, "invalidParameter.grantType", "不支持的grantType")
    access = ledger.current(
        "user_token",
        (app.app_key, unionid),
        ttl=TOKEN_TTL,
        app_key=app.app_key,
        unionid=unionid,
        corp_id=corp_id,
    )
    payload: dict[str, Any] = {
        "accessToken": access.value,
        "refreshToken": refresh.value,
        "expireIn": TOKEN_TTL,
    }
    if corp_id:
        payload["corpId"] = corp_id
    return api_json(payload)


def app_access_token(world: World, req: Req) -> Resp:
    body, error = json_body(req)
    if body is None:
        return error or _missing("body")
    key, secret = _str(body, "appKey"), _str(body, "appSecret")
    if not key:
        return _missing("appKey")
    if not secret:
        return _missing("appSecret")
    app = _client(world, key, secret)
    if app is None:
        return _bad_client()
    # One app token per app, shared with oapi /gettoken: the same token is returned and
    # renewed while valid, and it is accepted by topapi (as Casdoor uses it).
    grant = world.ledger.current(
        "app_token", app.app_key, ttl=TOKEN_TTL, app_key=app.app_key, corp_id=app.corp_id
    )
    return api_json({"accessToken": grant.value, "expireIn": TOKEN_TTL})


def contact_user(world: World, req: Req, union_id: str) -> Resp:
    token = req.headers.get(TOKEN_HEADER, "")
    if not token:
        return api_error(
            400, "AuthenticationFailed.MissingParameter", "缺少参数：x-acs-dingtalk-access-token"
        )
    grant, _ = world.ledger.look("user_token", token)
    if grant is None:
        app_grant, _ = world.ledger.look("app_token", token)
        if app_grant is not None:
            # An app token is not a user's authorisation (UNCONFIRMED exact response).
            return api_error(
                403,
                "Forbidden.AccessDenied.AccessTokenPermissionDenied",
                "没有调用该接口的权限",
                accessdenieddetail={"requiredScopes": ["Contact.User.Read"]},
            )
        return api_error(400, "InvalidAuthentication", "不合法的access_token")
    user = world.user(grant.unionid)
    if union_id != "me" and world.user(union_id) is None:
        return api_error(404, "invalidParameter.user.notFound", "用户不存在")
    if user is None or (union_id != "me" and union_id != user.unionid):
        return api_error(
            403,
            "Forbidden.AccessDenied.AccessTokenPermissionDenied",
            "没有调用该接口的权限",
            accessdenieddetail={"requiredScopes": ["Contact.User.Read"]},
        )
    payload: dict[str, Any] = {
        "nick": user.nick,
        "avatarUrl": user.avatar_url,
        "openId": user.openid_for(grant.app_key or ""),
        "unionId": user.unionid,
        "stateCode": user.state_code,
    }
    if user.mobile:
        payload["mobile"] = user.mobile
    if user.email:
        payload["email"] = user.email
    if user.visitor is not None:
        payload["visitor"] = user.visitor
    return api_json(payload)


ROUTES: dict[str, tuple[str, Handler]] = {
    "/v1.0/oauth2/userAccessToken": ("POST", user_access_token),
    "/v1.0/oauth2/accessToken": ("POST", app_access_token),
}
USERS_PREFIX = "/v1.0/contact/users/"


def not_found() -> Resp:
    message = "Specified api is not found, please check your url and method."
    return api_error(404, "InvalidAction.NotFound", message)
