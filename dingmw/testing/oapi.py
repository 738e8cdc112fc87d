"""``oapi.dingtalk.com`` JSON endpoints: HTTP 200 + errcode, snake_case, token in the query.

Sources are dingtalk-api.md §1.3 (sns chain), §2 (getuserinfo_bycode), §3 (enterprise
lookups), §6.2 (JSAPI code -> userid) and §7 (error codes).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from typing import Any

from .directory import FakeApp, FakeUser
from .state import CODE_TTL, TOKEN_TTL, World
from .wire import Req, Resp, oapi_error, oapi_ok, request_id, topapi_auth_error

# getuserinfo_bycode: the errcodes for a stale timestamp and a bad signature are UNCONFIRMED
# (dingtalk-api.md §2). Evidence found: mingyoung/dingtalk#55 ("钉钉扫码第三方登陆获取用户信息报
# 签名时间戳超时") records the real errmsg "签名时间戳超时" for this call, but its errcode is only
# in a screenshot; no public text pairs either failure with a number. Chosen:
#   stale timestamp -> 40035, the global "缺少/不合法参数" code (the timestamp parameter is no
#                      longer acceptable), with the observed errmsg;
#   bad signature   -> 40001, the global "Secret错误" code (a signature that does not verify
#                      means the caller signed with the wrong secret).
# Both are distinct from 40078 (bad tmp_auth_code), so a client can tell "fix your clock or
# secret" from "the code was used". The allowed skew is also UNCONFIRMED: 5 minutes here.
STALE_TIMESTAMP_ERRCODE = 40035
STALE_TIMESTAMP_ERRMSG = "签名时间戳超时"
BAD_SIGNATURE_ERRCODE = 40001
BAD_SIGNATURE_ERRMSG = "签名不匹配"
SIGNATURE_MAX_SKEW = 300.0

# Global codes (dingtalk-api.md §7, §1.3, §3).
BAD_TMP_CODE = (40078, "不存在的临时授权码")
EXPIRED_TMP_CODE = (42008, "临时授权码失效")  # dingtalk-api.md §7's table
MISSING_TMP_CODE = (41026, "缺少tmp_auth_code")
BAD_PARAM = (40035, "缺少参数")
NEED_JSON = (43009, "post参数需要json类型")
BAD_TOKEN = (40014, "不合法的access_token")
EXPIRED_TOKEN = (42001, "access_token超时")
# sns/gettoken with wrong credentials: UNCONFIRMED; 40089 is listed by some code as
# "不合法的corpid或corpsecret或者不合法的appkey或appsecret" (dingtalk-api.md §3.1).
SNS_BAD_CREDENTIALS = (40089, "不合法的appid或appsecret")
GETTOKEN_BAD_CREDENTIALS = (40096, "不合法的appKey或appSecret")
NOT_MEMBER = (60121, "未找到对应员工")
BAD_USERID = (33012, "无效的userId")
INVALID_PARAM = (400002, "无效的参数")

Handler = Callable[[World, Req], Resp]


def signature_of(app_secret: str, timestamp: str) -> str:
    """Base64(HmacSHA256(key=appSecret, msg=timestamp)) — dingtalk-api.md §2.1."""
    raw = hmac.new(app_secret.encode("utf-8"), timestamp.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(raw).decode("ascii")


def _err(pair: tuple[int, str], **extra: Any) -> Resp:
    return oapi_error(pair[0], pair[1], **extra)


def _body(req: Req) -> dict[str, Any] | None:
    if req.content_type() != "application/json":
        return None
    return req.json_object()


def _str_field(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    return value if isinstance(value, str) else ""


# --- legacy sns chain (seed 001) ------------------------------------------------------------


def sns_gettoken(world: World, req: Req) -> Resp:
    q = req.query
    app = world.app(q.get("appid"))
    if app is None or not hmac.compare_digest(q.get("appsecret", ""), app.app_secret):
        return _err(SNS_BAD_CREDENTIALS)
    grant = world.ledger.current("sns_app_token", app.app_key, ttl=TOKEN_TTL, app_key=app.app_key)
    # The doc example has no expires_in (dingtalk-api.md §1.3).
    return oapi_ok(access_token=grant.value)


def _sns_app(world: World, req: Req) -> tuple[FakeApp | None, Resp | None]:
    token = req.query.get("access_token", "")
    grant, expired = world.ledger.look("sns_app_token", token) if token else (None, False)
    if grant is None:
        return None, _err(EXPIRED_TOKEN if expired else BAD_TOKEN)
    app = world.app(grant.app_key)
    if app is None:
        return None, _err(BAD_TOKEN)
    return app, None


def _redeem_tmp_auth_code(world: World, req: Req, app: FakeApp) -> FakeUser | Resp:
    """The person behind `{"tmp_auth_code"}` (single use, bound to `app`), or the error."""
    body = _body(req)
    if body is None:
        return _err(NEED_JSON)
    code = _str_field(body, "tmp_auth_code")
    if not code:
        return _err(MISSING_TMP_CODE)
    grant, expired = world.ledger.look("tmp_auth_code", code)
    if expired:
        return _err(EXPIRED_TMP_CODE)
    if grant is None or grant.app_key != app.app_key:
        return _err(BAD_TMP_CODE)
    world.ledger.take("tmp_auth_code", code)
    user = world.user(grant.unionid)
    return user if user is not None else _err(BAD_TMP_CODE)


def sns_get_persistent_code(world: World, req: Req) -> Resp:
    app, error = _sns_app(world, req)
    if app is None:
        return error or _err(BAD_TOKEN)
    user = _redeem_tmp_auth_code(world, req, app)
    if isinstance(user, Resp):
        return user
    openid = user.openid_for(app.app_key)
    persistent = world.ledger.current(
        "persistent_code",
        (app.app_key, user.unionid),
        ttl=float("inf"),
        app_key=app.app_key,
        unionid=user.unionid,
        extra={"openid": openid},
    )
    persistent.expires_at = None  # "此码目前无过期时间"
    return oapi_ok(openid=openid, unionid=user.unionid, persistent_code=persistent.value)


def sns_get_sns_token(world: World, req: Req) -> Resp:
    app, error = _sns_app(world, req)
    if app is None:
        return error or _err(BAD_TOKEN)
    body = _body(req)
    if body is None:
        return _err(NEED_JSON)
    openid = _str_field(body, "openid")
    code = _str_field(body, "persistent_code")
    if not openid or not code:
        return _err(BAD_PARAM)
    grant, _ = world.ledger.look("persistent_code", code)
    if grant is None or grant.app_key != app.app_key or grant.extra.get("openid") != openid:
        # UNCONFIRMED errcode for a wrong openid/persistent_code pair.
        return oapi_error(40035, "不合法的persistent_code")
    token = world.ledger.current(
        "sns_token",
        (app.app_key, grant.unionid),
        ttl=TOKEN_TTL,
        app_key=app.app_key,
        unionid=grant.unionid,
    )
    return oapi_ok(sns_token=token.value, expires_in=TOKEN_TTL)


def sns_getuserinfo(world: World, req: Req) -> Resp:
    token = req.query.get("sns_token", "")
    grant, expired = world.ledger.look("sns_token", token) if token else (None, False)
    user = world.user(grant.unionid) if grant else None
    if grant is None or user is None or grant.app_key is None:
        # UNCONFIRMED errcode for a bad sns_token; the token family's codes are used.
        if expired:
            return _err(EXPIRED_TOKEN)
        return oapi_error(40014, "不合法的sns_token")
    info: dict[str, Any] = {
        "nick": user.nick,
        "openid": user.openid_for(grant.app_key),
        "unionid": user.unionid,
        "dingId": user.ding_id,
    }
    if user.masked_mobile:
        info["maskedMobile"] = user.masked_mobile
    return oapi_ok(user_info=info)


# --- signed code -> user (seed 003) ---------------------------------------------------------


def sns_getuserinfo_bycode(world: World, req: Req) -> Resp:
    q = req.query  # standard decoding: "%2B" -> "+", a raw "+" -> " " (then fails below)
    access_key, timestamp, signature = q.get("accessKey"), q.get("timestamp"), q.get("signature")
    if not access_key or not timestamp or not signature:
        return oapi_error(BAD_PARAM[0], "缺少参数 accessKey, timestamp or signature")
    app = world.app(access_key)
    if app is None:
        # UNCONFIRMED errcode for an unknown accessKey.
        return _err(GETTOKEN_BAD_CREDENTIALS)
    if not timestamp.isdigit():
        return oapi_error(STALE_TIMESTAMP_ERRCODE, "不合法的参数 timestamp")
    if abs(int(timestamp) / 1000.0 - world.now()) > SIGNATURE_MAX_SKEW:
        return oapi_error(STALE_TIMESTAMP_ERRCODE, STALE_TIMESTAMP_ERRMSG)
    expected = signature_of(app.app_secret, timestamp)
    if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
        return oapi_error(BAD_SIGNATURE_ERRCODE, BAD_SIGNATURE_ERRMSG)
    user = _redeem_tmp_auth_code(world, req, app)
    if isinstance(user, Resp):
        return user
    return oapi_ok(
        user_info={
            "nick": user.nick,
            "unionid": user.unionid,
            "dingId": user.ding_id,
            "openid": user.openid_for(app.app_key),
            "main_org_auth_high_level": user.real_authed,
        }
    )


# --- enterprise (seed 003) ------------------------------------------------------------------


def gettoken(world: World, req: Req) -> Resp:
    q = req.query  # only the query is read; a form body is ignored
    if not q.get("appkey"):
        return oapi_error(40035, "缺少参数 corpid or appkey")
    app = world.app(q.get("appkey"))
    if app is None or not hmac.compare_digest(q.get("appsecret", ""), app.app_secret):
        return _err(GETTOKEN_BAD_CREDENTIALS)
    grant = world.ledger.current(
        "app_token", app.app_key, ttl=TOKEN_TTL, app_key=app.app_key, corp_id=app.corp_id
    )
    return oapi_json_token(grant.value)


def oapi_json_token(token: str) -> Resp:
    return oapi_ok(access_token=token, expires_in=TOKEN_TTL)


def _topapi_app(world: World, req: Req) -> tuple[FakeApp | None, Resp | None]:
    token = req.query.get("access_token", "")
    if not token.strip():
        return None, topapi_auth_error("40000", "access_token is blank")
    grant, _ = world.ledger.look("app_token", token)
    app = world.app(grant.app_key) if grant else None
    if app is None:
        return None, topapi_auth_error("40014", "不合法的access_token")
    return app, None


def _topapi_call(world: World, req: Req) -> tuple[FakeApp, dict[str, Any]] | Resp:
    """The calling app (from its token) and the JSON body of a topapi call, or the error."""
    app, error = _topapi_app(world, req)
    if app is None:
        return error or _top_err(BAD_TOKEN)
    body = _body(req)
    if body is None:
        return _top_err(NEED_JSON)
    return app, body


def _top_ok(result: dict[str, Any]) -> Resp:
    return oapi_ok(result=result, request_id=request_id())


def _top_err(pair: tuple[int, str]) -> Resp:
    return oapi_error(pair[0], pair[1], request_id=request_id())


def user_getbyunionid(world: World, req: Req) -> Resp:
    call = _topapi_call(world, req)
    if isinstance(call, Resp):
        return call
    app, body = call
    unionid = _str_field(body, "unionid")
    if not unionid:
        return _top_err(INVALID_PARAM)
    user = world.user(unionid)
    userid = user.userid_in(app.corp_id) if user else None
    if userid is None:
        return _top_err(NOT_MEMBER)
    return _top_ok({"contact_type": 0, "userid": userid})


def _detail(user: FakeUser, corp_id: str, userid: str) -> dict[str, Any]:
    result: dict[str, Any] = {
        "userid": userid,
        "unionid": user.unionid,
        "name": user.display_name,
        "avatar": user.avatar_url,
        "state_code": user.state_code,
        "manager_userid": user.manager_userid,
        "hide_mobile": False,
        "telephone": user.telephone,
        "job_number": user.job_number or "",
        "title": user.title or "",
        "work_place": user.work_place,
        "remark": user.remark,
        "exclusive_account": False,
        "dept_id_list": list(user.dept_ids),
        "dept_order_list": [
            {"dept_id": d, "order": 176318669012199520 + i} for i, d in enumerate(user.dept_ids)
        ],
        "extension": "{}",
        "active": user.active,
        "real_authed": user.real_authed,
        "senior": user.senior,
        "admin": user.admin,
        "boss": user.boss,
        "leader_in_dept": [
            {"dept_id": d, "leader": d in user.leader_dept_ids} for d in user.dept_ids
        ],
        "role_list": (
            [{"id": 1507113578, "name": "主管理员", "group_name": "默认"}] if user.admin else []
        ),
        "union_emp_ext": {},
    }
    if user.mobile:
        result["mobile"] = user.mobile
    if user.email:
        result["email"] = user.email
    if user.org_email:
        result["org_email"] = user.org_email
    if user.hired_date is not None:
        result["hired_date"] = user.hired_date
    return result


def user_get(world: World, req: Req) -> Resp:
    call = _topapi_call(world, req)
    if isinstance(call, Resp):
        return call
    app, body = call
    userid = _str_field(body, "userid")
    language = body.get("language", "zh_CN")
    if not userid or language not in ("zh_CN", "en_US"):
        return _top_err(INVALID_PARAM)
    user = world.user_by_userid(app.corp_id, userid)
    if user is None or app.corp_id is None:
        return _top_err(BAD_USERID)
    return _top_ok(_detail(user, app.corp_id, userid))


def user_getuserinfo(world: World, req: Req) -> Resp:
    call = _topapi_call(world, req)
    if isinstance(call, Resp):
        return call
    app, body = call
    code = _str_field(body, "code")
    if not code:
        return _top_err(INVALID_PARAM)
    grant, _ = world.ledger.look("jsapi_code", code)
    if grant is None or grant.corp_id is None or grant.corp_id != app.corp_id:
        return _top_err(BAD_TMP_CODE)
    world.ledger.take("jsapi_code", code)
    user = world.user(grant.unionid)
    userid = user.userid_in(grant.corp_id) if user else None
    if user is None or userid is None:
        return _top_err(NOT_MEMBER)
    return _top_ok(
        {
            "userid": userid,
            "unionid": user.unionid,
            "associated_unionid": "",
            "device_id": hashlib.sha256(f"device|{user.unionid}".encode()).hexdigest()[:32],
            "sys": user.sys_level in (1, 2, 100),
            "sys_level": user.sys_level,
            "name": user.display_name,
        }
    )


def jsapi_code_for(world: World, unionid: str, corp_id: str) -> str:
    return world.ledger.mint("jsapi_code", ttl=CODE_TTL, unionid=unionid, corp_id=corp_id).value


# path -> (method, handler)
ROUTES: dict[str, tuple[str, Handler]] = {
    "/sns/gettoken": ("GET", sns_gettoken),
    "/sns/get_persistent_code": ("POST", sns_get_persistent_code),
    "/sns/get_sns_token": ("POST", sns_get_sns_token),
    "/sns/getuserinfo": ("GET", sns_getuserinfo),
    "/sns/getuserinfo_bycode": ("POST", sns_getuserinfo_bycode),
    "/gettoken": ("GET", gettoken),
    "/topapi/user/getbyunionid": ("POST", user_getbyunionid),
    "/topapi/v2/user/get": ("POST", user_get),
    "/topapi/v2/user/getuserinfo": ("POST", user_getuserinfo),
}


def wrong_method(expected: str) -> Resp:
    # Global table codes 43001 需要GET请求 / 43002 需要POST请求 (UNCONFIRMED for these paths).
    if expected == "GET":
        return oapi_error(43001, "需要GET请求")
    return oapi_error(43002, "需要POST请求")


def unknown_topapi() -> Resp:
    # "22: wrong ApiName/path on topapi" [probe] (dingtalk-api.md §7); errmsg UNCONFIRMED.
    return oapi_error(22, "无效的ApiName", request_id=request_id())
