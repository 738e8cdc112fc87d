"""The providers (providers/*.py): authorize URLs, callback params, signatures, reply parsing."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from dingmw.core.effects import Effect, Reply
from dingmw.errors import UpstreamError
from dingmw.providers import make_provider
from dingmw.providers.bycode import BycodeProvider, signature, signed_query
from dingmw.providers.calls import (
    IP_BANNED,
    DingTalkError,
    api,
    as_int,
    as_str,
    build,
    fetch_oapi_token,
    oapi,
)
from dingmw.providers.oauth2 import OAuth2Provider
from dingmw.providers.sns import SnsProvider, identity_from_user_info

from .helpers import APP_KEY, APP_SECRET, make_settings, reply, sample, sample_names

REDIRECT = "https://app.example/dingtalk/callback"
STATE = "s" * 32


def clock() -> float:
    return 1_700_000_000.0


# Samples -------------------------------------------------------------------------

# Field names per shared/dingtalk-api.md (the section in the comment).
DOCUMENTED_KEYS: dict[str, set[str]] = {
    "oauth2_user_access_token": {"accessToken", "refreshToken", "expireIn", "corpId"},  # §4.2
    "oauth2_users_me": {  # §4.3 (doc fields + the SDK model's loginEmail, visitor)
        "nick", "avatarUrl", "mobile", "openId", "unionId", "email", "stateCode",
        "loginEmail", "visitor",
    },
    "api_error_auth_code_not_found": {"requestid", "code", "message"},  # §4.2 errors
    "api_error_invalid_authentication": {"requestid", "code", "message"},  # §4.3 errors
    "sns_gettoken": {"errcode", "errmsg", "access_token"},  # §1.3
    "sns_get_persistent_code": {"errcode", "errmsg", "openid", "unionid", "persistent_code"},
    "sns_get_sns_token": {"errcode", "errmsg", "sns_token", "expires_in"},  # §1.3
    "sns_getuserinfo": {"errcode", "errmsg", "user_info", "corp_info"},  # §1.3
    "sns_getuserinfo_bycode": {"errcode", "errmsg", "user_info"},  # §2
    "oapi_error_40078": {"errcode", "errmsg"},  # §1.3, §2
    "oapi_error_40014": {"errcode", "errmsg"},  # §7
    "oapi_error_88_40014": {"errcode", "sub_code", "sub_msg", "request_id"},  # §10
    "oapi_error_88_timeout": {"errcode", "sub_code", "sub_msg", "request_id"},  # §7
    "ip_ban": {"status", "wait", "source", "punish", "uuid"},  # §7 rate limits, per egress IP
}  # fmt: skip


def test_every_sample_is_documented() -> None:
    assert sample_names() == sorted(DOCUMENTED_KEYS)


@pytest.mark.parametrize("name", sorted(DOCUMENTED_KEYS))
def test_sample_keys_match_the_reference(name: str) -> None:
    assert set(sample(name)) == DOCUMENTED_KEYS[name]


def test_user_info_samples_use_documented_keys() -> None:
    assert set(sample("sns_getuserinfo")["user_info"]) == {
        "nick", "openid", "unionid", "dingId", "maskedMobile",
    }  # fmt: skip
    assert set(sample("sns_getuserinfo_bycode")["user_info"]) == {
        "nick", "unionid", "dingId", "openid", "main_org_auth_high_level",
    }  # fmt: skip


# Authorize URLs and callback params ------------------------------------------------


def test_oauth2_widget() -> None:
    widget = OAuth2Provider(make_settings(), clock).widget(state=STATE, redirect_uri=REDIRECT)
    assert widget.widget == "dtframe"
    assert widget.login_origin == "https://login.dingtalk.com"
    parts = urlsplit(widget.authorize_url)
    assert (parts.scheme, parts.netloc, parts.path) == (
        "https",
        "login.dingtalk.com",
        "/oauth2/auth",
    )
    assert parse_qs(parts.query) == {
        "redirect_uri": [REDIRECT],
        "response_type": ["code"],
        "client_id": [APP_KEY],
        "scope": ["openid"],
        "prompt": ["consent"],
        "state": [STATE],
    }
    # Spaces are %20 (dingtalk-api.md §4.1), and the redirect_uri is encoded in full.
    assert "redirect_uri=https%3A%2F%2Fapp.example%2Fdingtalk%2Fcallback" in parts.query
    assert APP_SECRET not in repr(widget)


def test_oauth2_widget_follows_the_login_url_setting() -> None:
    settings = make_settings(login_url="http://127.0.0.1:9000")
    widget = OAuth2Provider(settings, clock).widget(state=STATE, redirect_uri=REDIRECT)
    assert widget.authorize_url.startswith("http://127.0.0.1:9000/oauth2/auth?")
    assert widget.login_origin == "http://127.0.0.1:9000"


@pytest.mark.parametrize("flow", ["sns", "bycode"])
def test_ddlogin_widget(flow: str) -> None:
    provider = make_provider(make_settings(flow=flow), clock)
    widget = provider.widget(state=STATE, redirect_uri=REDIRECT)
    assert widget.widget == "ddlogin"
    assert widget.login_origin == "https://login.dingtalk.com"
    parts = urlsplit(widget.authorize_url)
    assert (parts.netloc, parts.path) == ("oapi.dingtalk.com", "/connect/oauth2/sns_authorize")
    assert parse_qs(parts.query) == {
        "appid": [APP_KEY],
        "response_type": ["code"],
        "scope": ["snsapi_login"],
        "state": [STATE],
        "redirect_uri": [REDIRECT],
    }
    # The page appends `&loginTmpCode=` itself (§1.1).
    assert "loginTmpCode" not in widget.authorize_url
    assert APP_SECRET not in repr(widget)


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"authCode": "a", "code": "c"}, "a"),
        ({"code": "c"}, "c"),
        ({"authCode": "", "code": "c"}, "c"),
        ({}, None),
        ({"authCode": ""}, None),
    ],
)
def test_oauth2_reads_auth_code_then_code(params: dict[str, str], code: str | None) -> None:
    assert OAuth2Provider(make_settings(), clock).code_from(params) == code


@pytest.mark.parametrize("provider_class", [SnsProvider, BycodeProvider])
def test_legacy_flows_read_code(provider_class: Any) -> None:
    provider = provider_class(make_settings(), clock)
    assert provider.code_from({"code": "c", "authCode": "a"}) == "c"
    assert provider.code_from({"authCode": "a"}) is None


def test_make_provider_picks_the_flow() -> None:
    assert isinstance(make_provider(make_settings(), clock), OAuth2Provider)
    assert isinstance(make_provider(make_settings(flow="sns"), clock), SnsProvider)
    assert isinstance(make_provider(make_settings(flow="bycode"), clock), BycodeProvider)


# The bycode signature (dingtalk-api.md §2.1) ------------------------------------------


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        ("1546084445901", "HCbG3xNE3vzhO+u7qCUL1jS5hsu2n5r2cFhnTrtyDAE="),
        ("1546084445909", "uFUwugd08UNjjNHuUg0mpzcPg+aafy/sGcp2vyLQRkI="),
    ],
)
def test_signature_vectors(timestamp: str, expected: str) -> None:
    assert signature("testappSecret", timestamp) == expected


def test_signed_query_encodes_plus_slash_and_equals() -> None:
    query = signed_query("key", "testappSecret", "1546084445909")
    assert query == (
        "accessKey=key&timestamp=1546084445909"
        "&signature=uFUwugd08UNjjNHuUg0mpzcPg%2Baafy%2FsGcp2vyLQRkI%3D"
    )
    assert parse_qs(query)["signature"] == ["uFUwugd08UNjjNHuUg0mpzcPg+aafy/sGcp2vyLQRkI="]


def test_bycode_timestamp_is_milliseconds_from_the_clock() -> None:
    provider = BycodeProvider(make_settings(), lambda: 1_700_000_000.25)
    request = next(provider.exchange("c", redirect_uri=REDIRECT))
    assert isinstance(request, httpx.Request)
    assert request.url.params["timestamp"] == "1700000000250"
    assert request.url.params["accessKey"] == APP_KEY
    assert request.url.params["signature"] == signature(APP_SECRET, "1700000000250")


# Reading DingTalk's replies -------------------------------------------------------------


def run_call(
    call: Generator[Effect, Reply, dict[str, Any]], response: httpx.Response
) -> dict[str, Any]:
    request = next(call)
    assert isinstance(request, httpx.Request)
    with pytest.raises(StopIteration) as stop:
        call.send(response)
    result: dict[str, Any] = stop.value.value
    return result


def failing_call(call: Generator[Effect, Reply, Any], response: httpx.Response) -> UpstreamError:
    next(call)
    with pytest.raises(UpstreamError) as info:
        call.send(response)
    return info.value


def request(call: str = "x/call") -> httpx.Request:
    return build(call, "GET", "https://oapi.dingtalk.com/x", timeout=5)


def test_build_tags_the_call_and_the_timeout() -> None:
    req = build(
        "a/call",
        "POST",
        "https://oapi.dingtalk.com/a",
        timeout=2.5,
        params={"access_token": "t"},
        json_body={"k": "v"},
        headers={"x-extra": "1"},
    )
    assert req.extensions["dingmw.call"] == "a/call"
    assert req.extensions["timeout"] == {"connect": 2.5, "read": 2.5, "write": 2.5, "pool": 2.5}
    assert req.headers["accept"] == "application/json"
    assert req.headers["x-extra"] == "1"
    assert req.headers["content-type"] == "application/json"
    assert req.url.params["access_token"] == "t"


def test_oapi_success_returns_the_body() -> None:
    assert run_call(oapi("x/call", request()), reply(200, "sns_gettoken")) == sample("sns_gettoken")


def test_oapi_string_errcode_zero_is_success() -> None:
    assert run_call(oapi("x", request()), reply(200, errcode="0", v=1))["v"] == 1


@pytest.mark.parametrize(
    ("name", "code", "sub_code", "token_invalid"),
    [
        ("oapi_error_40078", "40078", "", False),
        ("oapi_error_40014", "40014", "", True),
        ("oapi_error_88_40014", "88", "40014", True),
        ("oapi_error_88_timeout", "88", "", False),
    ],
)
def test_oapi_errcode_becomes_dingtalk_error(
    name: str, code: str, sub_code: str, token_invalid: bool
) -> None:
    error = failing_call(oapi("x/call", request()), reply(200, name))
    assert isinstance(error, DingTalkError)
    assert error.call == "x/call"
    assert (error.code, error.sub_code, error.token_invalid) == (code, sub_code, token_invalid)
    assert code in error.detail


def test_a_credential_dingtalk_quotes_back_is_masked_in_the_error() -> None:
    """DingTalk's message reaches the 502 page and the log: a secret it echoes is masked."""
    echo = "invalid request /gettoken?appkey=k&appsecret=s3cr3t-value " + "x" * 1000
    error = failing_call(oapi("gettoken", request()), reply(200, errcode=40089, errmsg=echo))
    assert isinstance(error, DingTalkError)
    assert "s3cr3t-value" not in error.detail
    assert "appsecret=***" in error.detail
    assert len(error.detail) < 400


@pytest.mark.parametrize(
    ("code", "sub_code", "expected"),
    [
        ("40001", "", True),
        ("40014", "", True),
        ("42001", "", True),
        ("88", "40014", True),
        ("88", "40000", True),
        ("88", "", False),
        ("40078", "", False),
        ("-1", "", False),
        ("InvalidAuthentication", "", False),
    ],
)
def test_token_invalid_codes(code: str, sub_code: str, expected: bool) -> None:
    assert DingTalkError("c", code, "m", sub_code=sub_code).token_invalid is expected


def test_api_success_returns_the_body() -> None:
    body = run_call(api("y", request()), reply(200, "oauth2_users_me"))
    assert body["unionId"] == "unionid-zhangsan"


def test_api_error_body_becomes_dingtalk_error() -> None:
    error = failing_call(api("y/call", request()), reply(400, "api_error_auth_code_not_found"))
    assert isinstance(error, DingTalkError)
    assert error.call == "y/call"
    assert error.code == "invalidParameter.authCode.notFound"
    assert error.message == "不合法的临时授权码"


def test_api_error_body_in_capitals_becomes_dingtalk_error() -> None:
    """The gateway SDK reads `Code`/`Message` as well as `code`/`message`."""
    body = {"Code": "InvalidAuthentication", "Message": "不合法的access_token", "RequestId": "r"}
    error = failing_call(api("y/call", request()), httpx.Response(400, json=body))
    assert isinstance(error, DingTalkError)
    assert (error.code, error.message) == ("InvalidAuthentication", "不合法的access_token")


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(500, content=b"<html>"),
        httpx.Response(404, json={"message": "no code field"}),
        httpx.Response(200, content=b"not json"),
        httpx.Response(201, json="a string"),
    ],
)
def test_api_other_failures_are_upstream_errors(response: httpx.Response) -> None:
    error = failing_call(api("y/call", request()), response)
    assert error.call == "y/call"
    assert error.status == 502


@pytest.mark.parametrize("status", [200, 403, 429, 503])
@pytest.mark.parametrize("style", [oapi, api], ids=["oapi", "api"])
def test_the_ip_ban_reply_says_the_ip_was_refused(status: int, style: Any) -> None:
    """DingTalk's per-IP ban (§7) has neither `errcode` nor `code`: the 502 says what it is."""
    error = failing_call(style("x/call", request()), reply(status, "ip_ban"))
    assert not isinstance(error, DingTalkError)
    assert (error.call, error.status, error.reason) == ("x/call", 502, "upstream")
    assert error.detail == IP_BANNED
    assert "IP address" in error.detail


def test_an_ip_ban_on_gettoken_is_not_a_missing_access_token() -> None:
    settings = make_settings()
    params = {"appkey": APP_KEY, "appsecret": APP_SECRET}
    flow = fetch_oapi_token(settings, "gettoken", "/gettoken", params)
    error = failing_call(flow, reply(200, "ip_ban"))
    assert error.call == "gettoken"
    assert error.detail == IP_BANNED
    assert "access_token" not in error.detail
    assert APP_SECRET not in str(error)


@pytest.mark.parametrize("status", [200, 403])
@pytest.mark.parametrize("style", [oapi, api], ids=["oapi", "api"])
def test_an_html_reply_mentions_the_ip_ban(status: int, style: Any) -> None:
    page = httpx.Response(status, content=b"<!DOCTYPE html><html><body>denied</body></html>")
    error = failing_call(style("x/call", request()), page)
    assert (error.call, error.status) == ("x/call", 502)
    assert error.detail.startswith(f"HTTP {status}, body is not JSON but an HTML page")
    assert "IP address" in error.detail


def test_an_ordinary_reply_with_a_status_field_is_not_a_ban() -> None:
    ordinary = httpx.Response(200, json={"errcode": 0, "status": 1})
    assert run_call(oapi("x", request()), ordinary)["status"] == 1
    ordinary = httpx.Response(200, json={"status": "ok"})
    assert run_call(api("y", request()), ordinary)["status"] == "ok"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0),
        ("0", 0),
        (" 42 ", 42),
        ("-1", -1),
        ("x", None),
        (None, None),
        (True, None),
        (1.5, None),
    ],
)
def test_as_int_is_lenient_about_strings(value: object, expected: int | None) -> None:
    assert as_int(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("a", "a"), ("", None), (None, None), (7, "7"), (False, None), ({"x": 1}, None)],
)
def test_as_str(value: object, expected: str | None) -> None:
    assert as_str(value) == expected


def test_identity_from_user_info_samples() -> None:
    sns = identity_from_user_info("c", sample("sns_getuserinfo")["user_info"], "sns")
    assert (sns.unionid, sns.openid, sns.nick, sns.flow) == (
        "unionid-lisi",
        "openid-lisi",
        "李四",
        "sns",
    )
    bycode = identity_from_user_info("c", sample("sns_getuserinfo_bycode")["user_info"], "bycode")
    assert (bycode.unionid, bycode.openid, bycode.nick) == (
        "unionid-wangwu",
        "openid-wangwu",
        "王五",
    )


@pytest.mark.parametrize("user_info", [None, [], "x", {"nick": "n"}, {"unionid": ""}])
def test_identity_from_bad_user_info(user_info: object) -> None:
    with pytest.raises(UpstreamError) as info:
        identity_from_user_info("sns/getuserinfo", user_info, "sns")
    assert info.value.call == "sns/getuserinfo"
