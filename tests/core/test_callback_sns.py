"""The sns callback (seed 001), stepped effect by effect (dingtalk-api.md §1.3, §7).

The app token of `sns/gettoken` is a `Memo` effect: the driver answers it
from the store or runs the fetch sub-flow. Here the test answers it.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from dingmw.core.effects import CALL_EXTENSION, Flow, Memo, StoreDelete, StorePut
from dingmw.core.http import WebResponse
from dingmw.errors import UpstreamError

from .helpers import (
    APP_KEY,
    APP_SECRET,
    Browser,
    body_json,
    exchanged,
    expect,
    finish,
    finish_by_throwing,
    header,
    identity_of,
    json_of,
    make_core,
    page_context,
    reply,
    set_cookies,
)

PERSISTENT_CALL = "sns/get_persistent_code"
SNS_TOKEN_CALL = "sns/get_sns_token"  # a call name
USERINFO_CALL = "sns/getuserinfo"
GETTOKEN_CALL = "sns/gettoken"


def begin(**overrides: Any) -> tuple[Browser, Flow[WebResponse]]:
    core = make_core(flow="sns", **overrides)
    browser = Browser(core)
    state = browser.start_login("/inbox")
    flow = exchanged(browser.callback(state, code="tmp-auth-code"))
    put = expect(next(flow), StorePut)
    assert state in put.key
    assert put.only_if_absent is True
    return browser, flow


def assert_persistent_request(request: httpx.Request, token: str) -> None:
    assert request.method == "POST"
    assert request.url.scheme == "https"
    assert request.url.host == "oapi.dingtalk.com"
    assert request.url.path == "/sns/get_persistent_code"
    assert dict(request.url.params) == {"access_token": token}
    assert request.headers["content-type"] == "application/json"
    assert json_of(request) == {"tmp_auth_code": "tmp-auth-code"}
    assert request.extensions[CALL_EXTENSION] == PERSISTENT_CALL


def test_full_sns_login() -> None:
    browser, flow = begin()

    memo = expect(flow.send(True), Memo)
    assert APP_KEY in memo.key
    persistent_req = expect(flow.send("app-token-1"), httpx.Request)
    assert_persistent_request(persistent_req, "app-token-1")

    memo2 = expect(flow.send(reply(200, "sns_get_persistent_code")), Memo)
    assert memo2.key == memo.key
    sns_req = expect(flow.send("app-token-1"), httpx.Request)
    assert sns_req.method == "POST"
    assert sns_req.url.path == "/sns/get_sns_token"
    assert dict(sns_req.url.params) == {"access_token": "app-token-1"}
    assert json_of(sns_req) == {
        "openid": "openid-lisi",
        "persistent_code": "persistent-code-lisi",
    }
    assert sns_req.extensions[CALL_EXTENSION] == SNS_TOKEN_CALL

    info_req = expect(flow.send(reply(200, "sns_get_sns_token")), httpx.Request)
    assert info_req.method == "GET"
    assert info_req.url.path == "/sns/getuserinfo"
    assert dict(info_req.url.params) == {"sns_token": "sns-token-lisi"}
    assert info_req.content == b""
    assert info_req.extensions[CALL_EXTENSION] == USERINFO_CALL

    response = browser.finish(finish(flow, reply(200, "sns_getuserinfo")))
    assert response.status == 302
    assert header(response, "location") == "/inbox"
    session = set_cookies(response)["dingmw_session"]
    assert "httponly" in session.attrs
    assert session.attrs["samesite"] == "Lax"

    identity = identity_of(browser.core, browser.jar)
    assert identity is not None
    assert identity.unionid == "unionid-lisi"
    assert identity.openid == "openid-lisi"
    assert identity.nick == "李四"
    assert identity.flow == "sns"
    assert identity.userid is None


def test_memo_fetch_sub_flow_calls_gettoken() -> None:
    _, flow = begin()
    memo = expect(flow.send(True), Memo)
    fetch = memo.fetch()
    request = expect(next(fetch), httpx.Request)
    assert request.method == "GET"
    assert request.url.host == "oapi.dingtalk.com"
    assert request.url.path == "/sns/gettoken"
    assert dict(request.url.params) == {"appid": APP_KEY, "appsecret": APP_SECRET}
    assert request.extensions[CALL_EXTENSION] == GETTOKEN_CALL
    with pytest.raises(StopIteration) as stop:
        fetch.send(reply(200, "sns_gettoken"))
    token, ttl = stop.value.value
    assert token == "sns-app-token-123"
    # sns/gettoken has no expires_in: 7200 s lifetime (§1.3), cached for less than that.
    assert 0 < ttl < 7200


@pytest.mark.parametrize(
    ("answer", "detail_part"),
    [
        pytest.param(reply(200, "oapi_error_40014"), "40014", id="errcode"),
        pytest.param(reply(200, access_token=None, errcode=0), "access_token", id="no-token"),
        pytest.param(httpx.Response(500), "HTTP 500", id="http-500"),
    ],
)
def test_gettoken_failure_raises_upstream_error_naming_gettoken(
    answer: httpx.Response, detail_part: str
) -> None:
    _, flow = begin()
    memo = expect(flow.send(True), Memo)
    fetch = memo.fetch()
    next(fetch)
    with pytest.raises(UpstreamError) as info:
        fetch.send(answer)
    assert info.value.call == GETTOKEN_CALL
    assert detail_part in info.value.detail
    assert APP_SECRET not in str(info.value)


def test_gettoken_failure_from_driver_is_502_naming_gettoken() -> None:
    """The driver throws the fetch sub-flow's error into the flow at the `Memo`."""
    _, flow = begin()
    expect(flow.send(True), Memo)
    response = finish_by_throwing(flow, UpstreamError(GETTOKEN_CALL, "DingTalk error 40096"))
    assert response.status == 502
    assert page_context(response)["params"]["call"] == GETTOKEN_CALL


@pytest.mark.parametrize(
    "invalid",
    [
        pytest.param(reply(200, "oapi_error_40014"), id="errcode-40014"),
        pytest.param(reply(200, "oapi_error_88_40014"), id="errcode-88-sub-40014"),
        pytest.param(reply(200, errcode=42001, errmsg="access_token超时"), id="errcode-42001"),
        pytest.param(reply(200, errcode="40001", errmsg="string errcode"), id="errcode-str-40001"),
    ],
)
def test_invalid_app_token_is_refreshed_once_and_the_call_retried(
    invalid: httpx.Response,
) -> None:
    browser, flow = begin()
    memo = expect(flow.send(True), Memo)
    assert_persistent_request(expect(flow.send("stale-token"), httpx.Request), "stale-token")

    delete = expect(flow.send(invalid), StoreDelete)
    assert delete.key == memo.key
    again = expect(flow.send(None), Memo)
    assert again.key == memo.key
    assert_persistent_request(expect(flow.send("fresh-token"), httpx.Request), "fresh-token")

    # The next call uses the token from the memo; no second refresh.
    expect(flow.send(reply(200, "sns_get_persistent_code")), Memo)
    sns_req = expect(flow.send("fresh-token"), httpx.Request)
    assert sns_req.url.path == "/sns/get_sns_token"
    expect(flow.send(reply(200, "sns_get_sns_token")), httpx.Request)
    response = browser.finish(finish(flow, reply(200, "sns_getuserinfo")))
    assert response.status == 302


def test_second_invalid_token_reply_is_502_not_a_loop() -> None:
    _, flow = begin()
    expect(flow.send(True), Memo)
    expect(flow.send("stale-token"), httpx.Request)
    expect(flow.send(reply(200, "oapi_error_40014")), StoreDelete)
    expect(flow.send(None), Memo)
    expect(flow.send("fresh-but-also-bad"), httpx.Request)
    response = finish(flow, reply(200, "oapi_error_88_40014"))
    assert response.status == 502
    context = page_context(response)
    assert context["params"]["call"] == PERSISTENT_CALL
    assert "88/40014" in context["detail"]


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(reply(200, "oapi_error_40078"), id="code-used-40078"),
    ],
)
def test_other_errcodes_are_502_without_refreshing_the_token(answer: httpx.Response) -> None:
    _, flow = begin()
    expect(flow.send(True), Memo)
    expect(flow.send("token"), httpx.Request)
    response = finish(flow, answer)
    assert response.status == 502
    assert page_context(response)["params"]["call"] == PERSISTENT_CALL


def test_a_try_again_errcode_is_sent_once_more_then_502() -> None:
    """`88` without a sub-code (DingTalk's auth service timed out): the same call again, with
    the same token; a second such answer is the 502."""
    _, flow = begin()
    expect(flow.send(True), Memo)
    first = expect(flow.send("token"), httpx.Request)
    again = expect(flow.send(reply(200, "oapi_error_88_timeout")), httpx.Request)
    assert again.url == first.url
    response = finish(flow, reply(200, "oapi_error_88_timeout"))
    assert response.status == 502
    assert page_context(response)["params"]["call"] == PERSISTENT_CALL


def test_get_sns_token_errcode_is_502_naming_it() -> None:
    _, flow = begin()
    flow.send(True)
    flow.send("token")
    flow.send(reply(200, "sns_get_persistent_code"))
    flow.send("token")
    response = finish(flow, reply(200, errcode=40035, errmsg="缺少参数"))
    assert response.status == 502
    assert page_context(response)["params"]["call"] == SNS_TOKEN_CALL


@pytest.mark.parametrize(
    ("answer", "detail_part"),
    [
        pytest.param(reply(200, errcode=-1, errmsg="系统繁忙"), "-1", id="errcode"),
        pytest.param(httpx.Response(200, content=b"<html></html>"), "not JSON", id="html"),
        pytest.param(reply(200, "sns_getuserinfo", user_info=None), "user_info", id="no-info"),
        pytest.param(
            reply(200, "sns_getuserinfo", user_info={"nick": "x"}), "unionid", id="no-unionid"
        ),
    ],
)
def test_getuserinfo_failures_are_502_naming_it(answer: httpx.Response, detail_part: str) -> None:
    _, flow = begin()
    flow.send(True)
    flow.send("token")
    flow.send(reply(200, "sns_get_persistent_code"))
    flow.send("token")
    flow.send(reply(200, "sns_get_sns_token"))
    response = finish(flow, answer)
    assert response.status == 502
    context = page_context(response)
    assert context["params"]["call"] == USERINFO_CALL
    assert detail_part in context["detail"]


def test_persistent_code_reply_without_openid_is_502() -> None:
    _, flow = begin()
    flow.send(True)
    flow.send("token")
    response = finish(flow, reply(200, "sns_get_persistent_code", openid=None))
    assert response.status == 502
    assert page_context(response)["params"]["call"] == PERSISTENT_CALL


def test_network_failure_during_a_call_is_502() -> None:
    _, flow = begin()
    flow.send(True)
    expect(flow.send("token"), httpx.Request)
    response = finish_by_throwing(flow, UpstreamError(PERSISTENT_CALL, "network error"))
    assert response.status == 502
    assert page_context(response)["params"]["call"] == PERSISTENT_CALL


def test_reused_state_is_400_and_no_token_is_fetched() -> None:
    _, flow = begin()
    response = finish(flow, False)
    assert response.status == 400
    assert page_context(response)["reason"] == "state_used"


def test_allowed_users_refuses_others() -> None:
    _, flow = begin(allowed_users=frozenset({"unionid-zhangsan"}))
    flow.send(True)
    flow.send("token")
    flow.send(reply(200, "sns_get_persistent_code"))
    flow.send("token")
    flow.send(reply(200, "sns_get_sns_token"))
    response = finish(flow, reply(200, "sns_getuserinfo"))
    assert response.status == 403
    assert page_context(response)["reason"] == "user_not_allowed"
    assert "dingmw_session" not in set_cookies(response)


def test_json_error_for_api_clients() -> None:
    core = make_core(flow="sns")
    browser = Browser(core)
    state = browser.start_login("/")
    flow = exchanged(
        browser.get("/dingtalk/callback", f"code=c&state={state}", accept="application/json")
    )
    next(flow)
    flow.send(True)
    flow.send("token")
    response = finish(flow, reply(200, "oapi_error_40078"))
    data = body_json(response)
    assert response.status == 502
    assert data["call"] == PERSISTENT_CALL
    assert "40078" in data["detail"]
