"""Enrichment stepped with canned replies: DingTalk's doc examples write numbers as strings
(`"errcode":"0"`, `"contact_type":"0"`), and the parser takes both."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from dingmw.config import Settings
from dingmw.core.effects import Memo, StoreDelete
from dingmw.errors import ForbiddenError, UpstreamError
from dingmw.identity import Identity
from dingmw.providers.enrich import CorpDirectory, dept_ids

SETTINGS = Settings(
    app_key="dingappkey",
    app_secret="app-secret",
    secret_keys=("k" * 32,),
    enrich="detail",
    corp_id="dingcorp0001",
)
PERSON = Identity(unionid="union1", nick="张三", flow="oauth2")


def ok(body: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json=body)


def run(flow: Any, replies: list[Any]) -> tuple[Any, list[Any]]:
    """Step `flow`, answering each effect with the next reply; returns (result, effects)."""
    effects = [next(flow)]
    try:
        for reply in replies:
            effects.append(flow.send(reply))
    except StopIteration as stop:
        return stop.value, effects
    raise AssertionError(f"the flow wants more than {len(replies)} replies: {effects[-1]!r}")


def test_numbers_written_as_strings_are_read() -> None:
    directory = CorpDirectory(SETTINGS, lambda: 0.0)
    by_unionid = {
        "errcode": "0",
        "errmsg": "ok",
        "result": {"contact_type": "0", "userid": "zhangsan"},
        "request_id": "zcqi5450rpit",
    }
    detail = {
        "errcode": "0",
        "errmsg": "ok",
        "result": {
            "userid": "zhangsan",
            "name": "张三",
            "email": "1@example.com",
            "dept_id_list": ["1", 379661095, "x", True],
            "job_number": "10001",
            "title": "服务经理",
        },
    }
    replies = [
        "corp-token",
        ok(by_unionid),
        "corp-token",
        ok(detail),
    ]  # each call asks for the token
    identity, effects = run(directory.enrich(PERSON), replies)
    assert isinstance(effects[0], Memo)
    lookup = effects[1]
    assert isinstance(lookup, httpx.Request)
    assert lookup.url.path == "/topapi/user/getbyunionid"
    assert lookup.url.params["access_token"] == "corp-token"
    assert lookup.content == b'{"unionid":"union1"}'
    detail_request = effects[3]
    assert detail_request.url.path == "/topapi/v2/user/get"
    assert detail_request.content == b'{"userid":"zhangsan","language":"zh_CN"}'
    assert identity.userid == "zhangsan"
    assert identity.dept_ids == (1, 379661095)
    assert identity.corp_id == "dingcorp0001"
    assert identity.nick == "张三"  # kept from the login flow


def test_dept_ids_are_lenient() -> None:
    assert dept_ids([1, "2", " 3 ", "x", None, True, 4.5]) == (1, 2, 3)
    assert dept_ids("1,2") == ()
    assert dept_ids(None) == ()


@pytest.mark.parametrize("errcode", [60121, "60121"])
def test_outsider_keeps_the_login_identity(errcode: object) -> None:
    directory = CorpDirectory(SETTINGS, lambda: 0.0)
    outsider = ok({"errcode": errcode, "errmsg": "未找到对应员工"})
    identity, _ = run(directory.enrich(PERSON), ["corp-token", outsider])
    assert identity == PERSON


def test_outsider_is_refused_when_membership_is_required() -> None:
    settings = Settings(
        app_key="k",
        app_secret="s",
        secret_keys=("k" * 32,),
        enrich="detail",
        allowed_dept_ids=frozenset({1}),
    )
    flow = CorpDirectory(settings, lambda: 0.0).enrich(PERSON)
    next(flow)
    flow.send("corp-token")
    with pytest.raises(ForbiddenError) as refused:
        flow.send(ok({"errcode": 60121, "errmsg": "未找到对应员工"}))
    assert refused.value.reason == "not_member"
    assert refused.value.params["who"] == "张三"


def test_token_error_as_88_with_sub_code_refreshes_once() -> None:
    directory = CorpDirectory(SETTINGS, lambda: 0.0)
    flow = directory.enrich(PERSON)
    assert isinstance(next(flow), Memo)
    flow.send("old-token")
    stale = ok({"errcode": 88, "sub_code": "40014", "sub_msg": "不合法的access_token"})
    assert isinstance(flow.send(stale), StoreDelete)
    assert isinstance(flow.send(None), Memo)
    retried = flow.send("new-token")
    assert isinstance(retried, httpx.Request)
    assert retried.url.params["access_token"] == "new-token"
    with pytest.raises(UpstreamError) as failed:
        flow.send(stale)  # a second refusal is not retried again
    assert failed.value.call == "topapi/user/getbyunionid"
