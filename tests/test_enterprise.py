"""Enterprise identity (DINGMW_ENRICH=detail), silent in-client login, allow-lists and
what the wrapped app and `/auth` see, through both adapters and every flow."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from dingmw.testing import DEFAULT_CORP_ID, LISI, OUTSIDER, ZHANGSAN, FakeDingTalk

from .support import FLOWS, HTML, ClientFactory, login, make_settings, page_config, start_login

DINGTALK_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 AliApp(DingTalk/7.6.0) DingTalk/7.6.0 Channel/201200"
)


@pytest.fixture(params=FLOWS)
def flow(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


def test_enrichment_fills_the_corporate_identity(
    client_factory: ClientFactory, fake: FakeDingTalk, flow: str
) -> None:
    client = client_factory(make_settings(flow, enrich="detail", corp_id=DEFAULT_CORP_ID))
    assert login(client, fake, ZHANGSAN.unionid).status_code == 302
    me = client.get("/dingtalk/me").json()
    assert me["unionid"] == ZHANGSAN.unionid
    assert me["userid"] == "zhangsan"
    assert me["name"] == "张三"
    assert me["email"] == ZHANGSAN.org_email  # the organisation email wins
    assert me["mobile"] == ZHANGSAN.mobile
    assert me["title"] == ZHANGSAN.title
    assert me["job_number"] == ZHANGSAN.job_number
    assert me["dept_ids"] == [1, 100]
    assert me["corp_id"] == DEFAULT_CORP_ID
    assert fake.calls["/topapi/user/getbyunionid"] == 1
    assert fake.calls["/topapi/v2/user/get"] == 1
    # The wrapped app sees the userid (REMOTE_USER / request.user).
    assert client.get("/private").json()["userid"] == "zhangsan"


def test_corp_token_is_cached_across_logins(
    client_factory: ClientFactory, fake: FakeDingTalk
) -> None:
    client = client_factory(make_settings("oauth2", enrich="detail"))
    for person in (ZHANGSAN, LISI):
        client.cookies.clear()
        assert login(client, fake, person.unionid).status_code == 302
    assert fake.calls["/gettoken"] == 1


def test_outsider_logs_in_without_corp_fields(
    client_factory: ClientFactory, fake: FakeDingTalk, flow: str
) -> None:
    client = client_factory(make_settings(flow, enrich="detail"))
    assert login(client, fake, OUTSIDER.unionid).status_code == 302
    me = client.get("/dingtalk/me").json()
    assert me["unionid"] == OUTSIDER.unionid
    assert me["userid"] is None
    assert me["dept_ids"] == []
    assert fake.calls["/topapi/v2/user/get"] == 0


@pytest.mark.parametrize(
    "allow",
    [
        {"allowed_corp_ids": frozenset({DEFAULT_CORP_ID})},
        {"allowed_dept_ids": frozenset({100})},
    ],
)
def test_outsider_is_refused_when_membership_is_required(
    client_factory: ClientFactory, fake: FakeDingTalk, allow: dict[str, frozenset[str]]
) -> None:
    client = client_factory(
        make_settings("oauth2", enrich="detail", corp_id=DEFAULT_CORP_ID, **allow)
    )
    refused = login(client, fake, OUTSIDER.unionid)
    assert refused.status_code == 403
    assert 'data-reason="not_member"' in refused.text
    assert OUTSIDER.nick in refused.text
    assert "dingmw_session=" not in ";".join(refused.headers.get_list("set-cookie"))


EXTERNAL = '{"errcode":0,"errmsg":"ok","result":{"contact_type":"1","userid":"ext01"}}'


def test_an_external_contact_is_not_a_member(
    client_factory: ClientFactory, fake: FakeDingTalk
) -> None:
    """getbyunionid's `contact_type` 1 (§3.3, a string in the doc's example): one of the
    organisation's external contacts. Refused where membership is required, never given the
    organisation's corp_id or an employee's detail."""
    strict = make_settings(
        "oauth2",
        enrich="detail",
        corp_id=DEFAULT_CORP_ID,
        allowed_corp_ids=frozenset({DEFAULT_CORP_ID}),
    )
    fake.inject("/topapi/user/getbyunionid", body=EXTERNAL)
    refused = login(client_factory(strict), fake, ZHANGSAN.unionid)
    assert refused.status_code == 403
    assert 'data-reason="not_member"' in refused.text
    assert fake.calls["/topapi/v2/user/get"] == 0
    open_site = client_factory(make_settings("oauth2", enrich="detail", corp_id=DEFAULT_CORP_ID))
    fake.inject("/topapi/user/getbyunionid", body=EXTERNAL)
    assert login(open_site, fake, ZHANGSAN.unionid).status_code == 302
    me = open_site.get("/dingtalk/me").json()
    assert me["unionid"] == ZHANGSAN.unionid
    assert me.get("corp_id") is None
    assert me.get("userid") is None
    assert fake.calls["/topapi/v2/user/get"] == 0


def test_department_allow_list(client_factory: ClientFactory, fake: FakeDingTalk) -> None:
    settings = make_settings("sns", enrich="detail", allowed_dept_ids=frozenset({100}))
    client = client_factory(settings)
    refused = login(client, fake, LISI.unionid)  # department 200
    assert refused.status_code == 403
    assert 'data-reason="dept_not_allowed"' in refused.text
    assert login(client, fake, ZHANGSAN.unionid).status_code == 302  # departments 1, 100


def test_allowed_users_match_userid_or_unionid(
    client_factory: ClientFactory, fake: FakeDingTalk
) -> None:
    settings = make_settings(
        "oauth2", enrich="detail", allowed_users=frozenset({"zhangsan", LISI.unionid})
    )
    for person in (ZHANGSAN, LISI):
        client = client_factory(settings)
        assert login(client, fake, person.unionid).status_code == 302
    client = client_factory(settings)
    assert login(client, fake, OUTSIDER.unionid).status_code == 403


@pytest.mark.parametrize(
    ("errcode", "sub_code"), [(40014, None), (42001, None), (88, "40014"), (40001, None)]
)
def test_invalid_corp_token_is_refreshed_once(
    client_factory: ClientFactory, fake: FakeDingTalk, errcode: int, sub_code: str | None
) -> None:
    client = client_factory(make_settings("oauth2", enrich="detail"))
    fake.inject("/topapi/user/getbyunionid", errcode=errcode, sub_code=sub_code)
    assert login(client, fake, ZHANGSAN.unionid).status_code == 302
    assert fake.calls["/gettoken"] == 2
    assert fake.calls["/topapi/user/getbyunionid"] == 2


def test_corp_token_failing_twice_is_a_502(
    client_factory: ClientFactory, fake: FakeDingTalk
) -> None:
    client = client_factory(make_settings("oauth2", enrich="detail"))
    fake.inject("/topapi/v2/user/get", errcode=40014, times=2)
    response = login(client, fake, ZHANGSAN.unionid)
    assert response.status_code == 502
    assert "topapi/v2/user/get" in response.text
    assert fake.calls["/topapi/v2/user/get"] == 2


@pytest.mark.parametrize(
    ("path", "call"),
    [
        ("/gettoken", "gettoken"),
        ("/topapi/user/getbyunionid", "topapi/user/getbyunionid"),
        ("/topapi/v2/user/get", "topapi/v2/user/get"),
    ],
)
def test_enrichment_errors_are_502_naming_the_call(
    client_factory: ClientFactory, fake: FakeDingTalk, path: str, call: str
) -> None:
    client = client_factory(make_settings("oauth2", enrich="detail"))
    fake.inject(path, errcode=-1, message="系统繁忙", times=2)  # a lookup is tried twice
    response = login(client, fake, ZHANGSAN.unionid)
    assert response.status_code == 502
    assert call in response.text


@pytest.mark.parametrize(
    ("errcode", "sub_code"), [(-1, None), (15, None), (88, "")], ids=["busy", "timeout", "88"]
)
@pytest.mark.parametrize("path", ["/topapi/user/getbyunionid", "/topapi/v2/user/get"])
def test_a_lookup_dingtalk_asks_to_retry_is_sent_once_more(
    client_factory: ClientFactory,
    fake: FakeDingTalk,
    path: str,
    errcode: int,
    sub_code: str | None,
) -> None:
    """dingtalk-api.md §7: `-1` busy, `15` call timeout, `88` without a sub-code: retryable.
    The person's code was spent already; one more try spares them a second scan."""
    client = client_factory(make_settings("oauth2", enrich="detail"))
    fake.inject(path, errcode=errcode, sub_code=sub_code)
    assert login(client, fake, ZHANGSAN.unionid).status_code == 302
    assert fake.calls[path] == 2
    assert fake.calls["/gettoken"] == 1  # no token refresh for these


@pytest.mark.parametrize(
    ("path", "call"),
    [
        ("/v1.0/oauth2/userAccessToken", "oauth2/userAccessToken"),
        ("/gettoken", "gettoken"),
        ("/topapi/user/getbyunionid", "topapi/user/getbyunionid"),
        ("/topapi/v2/user/get", "topapi/v2/user/get"),
    ],
)
def test_an_ip_ban_is_a_502_saying_the_ip_was_refused(
    client_factory: ClientFactory, fake: FakeDingTalk, path: str, call: str
) -> None:
    client = client_factory(make_settings("oauth2", enrich="detail"))
    fake.inject(path, ip_ban=True)
    response = login(client, fake, ZHANGSAN.unionid)
    assert response.status_code == 502
    assert 'data-reason="upstream"' in response.text
    assert call in response.text
    assert "refused this server" in response.text
    assert "IP address" in response.text
    assert "no access_token" not in response.text
    assert "no result" not in response.text


def test_wrong_corp_credentials_are_a_502(
    client_factory: ClientFactory, fake: FakeDingTalk
) -> None:
    settings = make_settings(
        "oauth2", enrich="detail", corp_app_key="nope", corp_app_secret="wrong-secret"
    )
    response = login(client_factory(settings), fake, ZHANGSAN.unionid)
    assert response.status_code == 502
    assert "40096" in response.text
    assert "wrong-secret" not in response.text


def test_bycode_clock_skew_is_explained(client_factory: ClientFactory, fake: FakeDingTalk) -> None:
    fake.advance(3600)  # DingTalk's clock is an hour ahead of ours
    response = login(client_factory(make_settings("bycode")), fake, ZHANGSAN.unionid)
    assert response.status_code == 502
    assert 'data-reason="clock_skew"' in response.text
    assert "clock" in response.text


def test_auth_endpoint_headers(client_factory: ClientFactory, fake: FakeDingTalk) -> None:
    client = client_factory(make_settings("oauth2", enrich="detail"))
    login(client, fake, ZHANGSAN.unionid)
    auth = client.get("/dingtalk/auth")
    assert auth.status_code == 204
    assert auth.headers["x-dingtalk-unionid"] == ZHANGSAN.unionid
    assert auth.headers["x-dingtalk-userid"] == "zhangsan"
    assert auth.headers["x-dingtalk-email"] == ZHANGSAN.org_email
    assert auth.headers["x-dingtalk-dept-ids"] == "1,100"
    name = auth.headers["x-dingtalk-name"]
    assert name.startswith("UTF-8''")  # RFC 8187: non-ASCII is percent-encoded
    assert unquote(name.removeprefix("UTF-8''")) == "张三"
    client.cookies.clear()
    login(client, fake, LISI.unionid)
    assert client.get("/dingtalk/auth").headers["x-dingtalk-name"] == "Li Si"


def test_in_client_login_page_offers_silent_login(client_factory: ClientFactory) -> None:
    client = client_factory(make_settings("sns", corp_id=DEFAULT_CORP_ID))
    inside = client.get("/dingtalk/login", headers={**HTML, "user-agent": DINGTALK_UA})
    config = page_config(inside)
    assert config["in_client"] == {"corp_id": DEFAULT_CORP_ID}
    assert "dingtalk.open.js" in inside.text
    outside = client.get("/dingtalk/login", headers=HTML)
    assert "in_client" not in page_config(outside)
    assert "dingtalk.open.js" not in outside.text


def test_in_client_code_logs_in_without_qr(
    client_factory: ClientFactory, fake: FakeDingTalk, flow: str
) -> None:
    client = client_factory(make_settings(flow, corp_id=DEFAULT_CORP_ID, enrich="detail"))
    config = start_login(client, "/inside")
    code = fake.issue_jsapi_code(LISI.unionid)
    response = client.get(
        "/dingtalk/callback", params={"jsapi_code": code, "state": config["state"]}
    )
    assert response.status_code == 302
    assert response.headers["location"] == "/inside"
    me = client.get("/dingtalk/me").json()
    assert me["userid"] == "lisi"
    assert me["unionid"] == LISI.unionid
    assert me["flow"] == "inclient"
    assert me["dept_ids"] == [200]
    assert fake.calls["/topapi/v2/user/getuserinfo"] == 1
    # The JSAPI code is single use.
    client.cookies.clear()
    again = start_login(client, "/inside")
    reused = client.get("/dingtalk/callback", params={"jsapi_code": code, "state": again["state"]})
    assert reused.status_code == 502
    assert "topapi/v2/user/getuserinfo" in reused.text


def test_jsapi_code_is_ignored_without_corp_id(
    client_factory: ClientFactory, fake: FakeDingTalk
) -> None:
    client = client_factory(make_settings("oauth2"))
    config = start_login(client)
    code = fake.issue_jsapi_code(LISI.unionid)
    response = client.get(
        "/dingtalk/callback", params={"jsapi_code": code, "state": config["state"]}, headers=HTML
    )
    assert response.status_code == 400
    assert 'data-reason="code_missing"' in response.text
