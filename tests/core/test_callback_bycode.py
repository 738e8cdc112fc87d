"""The bycode callback (seed 003), stepped effect by effect (dingtalk-api.md §2)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from dingmw.core.effects import CALL_EXTENSION, Flow, StorePut
from dingmw.core.http import WebResponse
from dingmw.errors import ConfigError, UpstreamError

from .helpers import (
    APP_KEY,
    Browser,
    Clock,
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

CALL = "sns/getuserinfo_bycode"


def begin(clock: Clock, **overrides: Any) -> tuple[Browser, Flow[WebResponse]]:
    core = make_core(clock, flow="bycode", **overrides)
    browser = Browser(core)
    state = browser.start_login("/desk")
    flow = exchanged(browser.callback(state, code="tmp-code"))
    put = expect(next(flow), StorePut)
    assert state in put.key
    assert put.only_if_absent is True
    return browser, flow


@pytest.mark.parametrize(
    ("now", "timestamp", "encoded"),
    [
        # dingtalk-api.md §2.1: the official vector and a computed one with `/`.
        ("1546084445.901", "1546084445901", "HCbG3xNE3vzhO%2Bu7qCUL1jS5hsu2n5r2cFhnTrtyDAE%3D"),
        ("1546084445.909", "1546084445909", "uFUwugd08UNjjNHuUg0mpzcPg%2Baafy%2FsGcp2vyLQRkI%3D"),
    ],
)
def test_signed_request_matches_the_documented_vectors(
    now: str, timestamp: str, encoded: str
) -> None:
    clock = Clock(float(now))
    _, flow = begin(clock, app_secret="testappSecret")
    request = expect(flow.send(True), httpx.Request)
    assert request.method == "POST"
    assert request.url.host == "oapi.dingtalk.com"
    assert request.url.path == "/sns/getuserinfo_bycode"
    # Exact bytes: `+`, `/` and `=` of the Base64 signature are percent-encoded.
    assert request.url.query.decode() == (
        f"accessKey={APP_KEY}&timestamp={timestamp}&signature={encoded}"
    )
    assert request.headers["content-type"] == "application/json"
    assert json_of(request) == {"tmp_auth_code": "tmp-code"}
    assert request.extensions[CALL_EXTENSION] == CALL


def test_full_bycode_login() -> None:
    browser, flow = begin(Clock())
    expect(flow.send(True), httpx.Request)
    response = browser.finish(finish(flow, reply(200, "sns_getuserinfo_bycode")))
    assert response.status == 302
    assert header(response, "location") == "/desk"
    assert "dingmw_session" in set_cookies(response)
    identity = identity_of(browser.core, browser.jar)
    assert identity is not None
    assert identity.unionid == "unionid-wangwu"
    assert identity.openid == "openid-wangwu"
    assert identity.nick == "王五"
    assert identity.flow == "bycode"


@pytest.mark.parametrize(
    ("answer", "detail_part"),
    [
        pytest.param(reply(200, "oapi_error_40078"), "40078", id="errcode-40078"),
        pytest.param(reply(200, errcode="41026", errmsg="缺少tmp_auth_code"), "41026", id="str"),
        pytest.param(reply(200, errcode="abc"), "errcode", id="errcode-not-a-number"),
        pytest.param(httpx.Response(500, content=b"Internal"), "HTTP 500", id="http-500"),
        pytest.param(httpx.Response(200, content=b"\xff\xfe"), "not JSON", id="garbage"),
        pytest.param(httpx.Response(200, json=[1, 2]), "not an object", id="json-list"),
        pytest.param(reply(200, errcode=0, errmsg="ok"), "user_info", id="no-user-info"),
    ],
)
def test_failures_are_502_naming_the_call(answer: httpx.Response, detail_part: str) -> None:
    _, flow = begin(Clock())
    flow.send(True)
    response = finish(flow, answer)
    assert response.status == 502
    context = page_context(response)
    assert context["params"]["call"] == CALL
    assert detail_part in context["detail"]
    assert b"app-secret" not in response.body


def test_network_failure_is_502() -> None:
    _, flow = begin(Clock())
    flow.send(True)
    response = finish_by_throwing(flow, UpstreamError(CALL, "timed out", reason="upstream_timeout"))
    assert response.status == 502
    assert page_context(response)["reason"] == "upstream_timeout"


def test_reused_state_is_400() -> None:
    _, flow = begin(Clock())
    response = finish(flow, False)
    assert response.status == 400
    assert page_context(response)["reason"] == "state_used"


def test_corp_allow_list_needs_enrichment() -> None:
    """bycode says nothing about the organisation: a corp allow-list would admit nobody,
    so the settings refuse it unless DINGMW_ENRICH=detail looks the person up."""
    with pytest.raises(ConfigError, match="DINGMW_ALLOWED_CORP_IDS needs DINGMW_ENRICH=detail"):
        begin(Clock(), allowed_corp_ids=frozenset({"dingcorp0001"}))
