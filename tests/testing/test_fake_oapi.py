"""oapi.dingtalk.com wire format (dingtalk-api.md §1.3, §2, §3, §6.2, §7, §10)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import pytest

from dingmw.testing import (
    DEFAULT_APP_KEY,
    DEFAULT_APP_SECRET,
    DEFAULT_CORP_ID,
    LISI,
    OUTSIDER,
    ZHANGSAN,
    FakeApp,
    FakeDingTalk,
    signature_of,
)

from .conftest import OAPI, Clock, param, sns_url

OTHER = FakeApp(app_key="dingotherapp0002", app_secret="other-secret", corp_id=None)


def ok(resp: httpx.Response) -> dict[str, Any]:
    assert resp.status_code == 200
    body: dict[str, Any] = resp.json()
    assert body["errcode"] == 0, body
    assert body["errmsg"] == "ok"
    return body


def err(resp: httpx.Response, errcode: int) -> dict[str, Any]:
    assert resp.status_code == 200  # oapi errors are HTTP 200 too
    body: dict[str, Any] = resp.json()
    assert body["errcode"] == errcode, body
    assert isinstance(body["errmsg"], str)
    return body


# --- §2.1 signature vectors -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("timestamp", "signature", "encoded"),
    [
        (
            "1546084445901",
            "HCbG3xNE3vzhO+u7qCUL1jS5hsu2n5r2cFhnTrtyDAE=",
            "HCbG3xNE3vzhO%2Bu7qCUL1jS5hsu2n5r2cFhnTrtyDAE%3D",
        ),
        (
            "1546084445909",
            "uFUwugd08UNjjNHuUg0mpzcPg+aafy/sGcp2vyLQRkI=",
            "uFUwugd08UNjjNHuUg0mpzcPg%2Baafy%2FsGcp2vyLQRkI%3D",
        ),
    ],
)
def test_signature_vectors(timestamp: str, signature: str, encoded: str) -> None:
    assert signature_of("testappSecret", timestamp) == signature
    assert quote(signature, safe="") == encoded


@pytest.mark.parametrize("timestamp", ["1546084445901", "1546084445909"])
def test_bycode_accepts_the_doc_vectors(timestamp: str) -> None:
    fake = FakeDingTalk(clock=lambda: int(timestamp) / 1000)
    fake.add_app(FakeApp(app_key="vectorapp", app_secret="testappSecret"))
    with httpx.Client(transport=fake.transport()) as c:
        code = param(fake.scan(sns_url(appid="vectorapp"), ZHANGSAN.unionid), "code")
        sig = signature_of("testappSecret", timestamp)
        raw_query = f"accessKey=vectorapp&timestamp={timestamp}&signature={quote(sig, safe='')}"
        resp = c.post(f"{OAPI}/sns/getuserinfo_bycode?{raw_query}", json={"tmp_auth_code": code})
    info = ok(resp)["user_info"]
    assert info["unionid"] == ZHANGSAN.unionid


# --- getuserinfo_bycode ---------------------------------------------------------------------


def _bycode(
    c: httpx.Client, clock: Clock, code: str, *, key: str = DEFAULT_APP_KEY, secret: str = ""
) -> httpx.Response:
    ts = str(int(clock() * 1000))
    sig = signature_of(secret or DEFAULT_APP_SECRET, ts)
    return c.post(
        f"{OAPI}/sns/getuserinfo_bycode",
        params={"accessKey": key, "timestamp": ts, "signature": sig},
        json={"tmp_auth_code": code},
    )


def test_bycode_success_shape_and_single_use(
    fake: FakeDingTalk, client: httpx.Client, clock: Clock
) -> None:
    code = param(fake.scan(sns_url(), ZHANGSAN.unionid), "code")
    body = ok(_bycode(client, clock, code))
    assert set(body) == {"errcode", "errmsg", "user_info"}
    info = body["user_info"]
    assert set(info) == {"nick", "unionid", "dingId", "openid", "main_org_auth_high_level"}
    assert info["nick"] == "张三"
    assert info["openid"] == ZHANGSAN.openid_for(DEFAULT_APP_KEY)
    assert isinstance(info["main_org_auth_high_level"], bool)
    assert info["dingId"].startswith("$:LWCP_v1:$")
    err(_bycode(client, clock, code), 40078)  # single use


def test_bycode_raw_plus_fails(fake: FakeDingTalk, client: httpx.Client, clock: Clock) -> None:
    # find a timestamp whose signature contains '+', then send it unencoded
    ts_ms = int(clock() * 1000)
    while "+" not in signature_of(DEFAULT_APP_SECRET, str(ts_ms)):
        ts_ms += 1
    sig = signature_of(DEFAULT_APP_SECRET, str(ts_ms))
    code = param(fake.scan(sns_url(), ZHANGSAN.unionid), "code")
    url = f"{OAPI}/sns/getuserinfo_bycode?accessKey={DEFAULT_APP_KEY}&timestamp={ts_ms}"
    bad = client.post(url + "&signature=" + sig, json={"tmp_auth_code": code})
    err(bad, fake.BAD_SIGNATURE_ERRCODE)
    good = client.post(url + "&signature=" + quote(sig, safe=""), json={"tmp_auth_code": code})
    ok(good)


def test_bycode_stale_timestamp_and_bad_signature(
    fake: FakeDingTalk, client: httpx.Client, clock: Clock
) -> None:
    code = param(fake.scan(sns_url(), ZHANGSAN.unionid), "code")
    ts = str(int((clock() - 3600) * 1000))
    sig = signature_of(DEFAULT_APP_SECRET, ts)
    stale = client.post(
        f"{OAPI}/sns/getuserinfo_bycode",
        params={"accessKey": DEFAULT_APP_KEY, "timestamp": ts, "signature": sig},
        json={"tmp_auth_code": code},
    )
    body = err(stale, fake.STALE_TIMESTAMP_ERRCODE)
    assert body["errmsg"] == "签名时间戳超时"
    err(_bycode(client, clock, code, secret="wrong-secret"), fake.BAD_SIGNATURE_ERRCODE)
    assert fake.STALE_TIMESTAMP_ERRCODE != fake.BAD_SIGNATURE_ERRCODE
    ok(_bycode(client, clock, code))  # the code survived the rejected attempts


def test_bycode_requires_query_params_and_json(
    fake: FakeDingTalk, client: httpx.Client, clock: Clock
) -> None:
    err(client.post(f"{OAPI}/sns/getuserinfo_bycode", json={"tmp_auth_code": "x"}), 40035)
    ts = str(int(clock() * 1000))
    params = {
        "accessKey": DEFAULT_APP_KEY,
        "timestamp": ts,
        "signature": signature_of(DEFAULT_APP_SECRET, ts),
    }
    err(client.post(f"{OAPI}/sns/getuserinfo_bycode", params=params, json={}), 41026)
    err(
        client.post(f"{OAPI}/sns/getuserinfo_bycode", params=params, data={"tmp_auth_code": "x"}),
        43009,
    )
    err(
        client.post(
            f"{OAPI}/sns/getuserinfo_bycode", params=params, json={"tmp_auth_code": "nope"}
        ),
        40078,
    )


def test_bycode_code_bound_to_app(fake: FakeDingTalk, client: httpx.Client, clock: Clock) -> None:
    fake.add_app(OTHER)
    code = param(fake.scan(sns_url(appid=OTHER.app_key), ZHANGSAN.unionid), "code")
    err(_bycode(client, clock, code), 40078)
    body = ok(_bycode(client, clock, code, key=OTHER.app_key, secret=OTHER.app_secret))
    assert body["user_info"]["openid"] == ZHANGSAN.openid_for(OTHER.app_key)
    assert ZHANGSAN.openid_for(OTHER.app_key) != ZHANGSAN.openid_for(DEFAULT_APP_KEY)


def test_tmp_auth_code_expires(fake: FakeDingTalk, client: httpx.Client, clock: Clock) -> None:
    code = param(fake.scan(sns_url(), ZHANGSAN.unionid), "code")
    clock.t += 301
    err(_bycode(client, clock, code), 42008)  # 临时授权码失效 (a used or unknown one: 40078)


# --- legacy sns chain -----------------------------------------------------------------------


def test_sns_chain(fake: FakeDingTalk, client: httpx.Client) -> None:
    body = ok(
        client.get(
            f"{OAPI}/sns/gettoken",
            params={"appid": DEFAULT_APP_KEY, "appsecret": DEFAULT_APP_SECRET},
        )
    )
    assert set(body) == {"errcode", "errmsg", "access_token"}
    token = body["access_token"]
    again = ok(
        client.get(
            f"{OAPI}/sns/gettoken",
            params={"appid": DEFAULT_APP_KEY, "appsecret": DEFAULT_APP_SECRET},
        )
    )
    assert again["access_token"] == token

    code = param(fake.scan(sns_url(), LISI.unionid), "code")
    pc = ok(
        client.post(
            f"{OAPI}/sns/get_persistent_code",
            params={"access_token": token},
            json={"tmp_auth_code": code},
        )
    )
    assert set(pc) == {"errcode", "errmsg", "openid", "unionid", "persistent_code"}
    assert pc["unionid"] == LISI.unionid
    assert pc["openid"] == LISI.openid_for(DEFAULT_APP_KEY)
    err(
        client.post(
            f"{OAPI}/sns/get_persistent_code",
            params={"access_token": token},
            json={"tmp_auth_code": code},
        ),
        40078,
    )

    st = ok(
        client.post(
            f"{OAPI}/sns/get_sns_token",
            params={"access_token": token},
            json={"openid": pc["openid"], "persistent_code": pc["persistent_code"]},
        )
    )
    assert set(st) == {"errcode", "errmsg", "sns_token", "expires_in"}
    assert st["expires_in"] == 7200

    info = ok(client.get(f"{OAPI}/sns/getuserinfo", params={"sns_token": st["sns_token"]}))
    user_info = info["user_info"]
    assert set(user_info) == {"nick", "openid", "unionid", "dingId", "maskedMobile"}
    assert user_info["maskedMobile"] == "139****5678"
    assert user_info["nick"] == "Li Si"


def test_sns_errors(fake: FakeDingTalk, client: httpx.Client, clock: Clock) -> None:
    err(
        client.get(f"{OAPI}/sns/gettoken", params={"appid": DEFAULT_APP_KEY, "appsecret": "x"}),
        40089,
    )
    err(
        client.post(
            f"{OAPI}/sns/get_persistent_code",
            params={"access_token": "bogus"},
            json={"tmp_auth_code": "x"},
        ),
        40014,
    )
    token = ok(
        client.get(
            f"{OAPI}/sns/gettoken",
            params={"appid": DEFAULT_APP_KEY, "appsecret": DEFAULT_APP_SECRET},
        )
    )["access_token"]
    clock.t += 7201
    err(
        client.post(
            f"{OAPI}/sns/get_persistent_code",
            params={"access_token": token},
            json={"tmp_auth_code": "x"},
        ),
        42001,
    )
    err(client.get(f"{OAPI}/sns/getuserinfo", params={"sns_token": "bogus"}), 40014)
    err(client.post(f"{OAPI}/sns/gettoken"), 43001)
    err(client.get(f"{OAPI}/sns/get_persistent_code"), 43002)


def test_sns_app_token_is_not_a_corp_token(client: httpx.Client) -> None:
    sns_token = ok(
        client.get(
            f"{OAPI}/sns/gettoken",
            params={"appid": DEFAULT_APP_KEY, "appsecret": DEFAULT_APP_SECRET},
        )
    )["access_token"]
    body = err(
        client.post(
            f"{OAPI}/topapi/user/getbyunionid",
            params={"access_token": sns_token},
            json={"unionid": ZHANGSAN.unionid},
        ),
        88,
    )
    assert body["sub_code"] == "40014"


# --- enterprise -----------------------------------------------------------------------------


def _corp_token(client: httpx.Client) -> str:
    body = ok(
        client.get(
            f"{OAPI}/gettoken", params={"appkey": DEFAULT_APP_KEY, "appsecret": DEFAULT_APP_SECRET}
        )
    )
    assert set(body) == {"errcode", "errmsg", "access_token", "expires_in"}
    assert body["expires_in"] == 7200
    token: str = body["access_token"]
    return token


def test_gettoken_same_token_renewed_then_new(client: httpx.Client, clock: Clock) -> None:
    first = _corp_token(client)
    clock.t += 7000
    assert _corp_token(client) == first  # renewed: valid for another 7200 s
    clock.t += 7000
    assert _corp_token(client) == first
    clock.t += 7201
    assert _corp_token(client) != first


def test_gettoken_errors(client: httpx.Client) -> None:
    err(
        client.get(f"{OAPI}/gettoken", params={"appkey": DEFAULT_APP_KEY, "appsecret": "no"}), 40096
    )
    # only the query string is read
    body = err(
        client.request(
            "GET",
            f"{OAPI}/gettoken",
            data={"appkey": DEFAULT_APP_KEY, "appsecret": DEFAULT_APP_SECRET},
        ),
        40035,
    )
    assert "appkey" in body["errmsg"]


def test_getbyunionid(client: httpx.Client) -> None:
    token = _corp_token(client)
    url = f"{OAPI}/topapi/user/getbyunionid"
    body = ok(client.post(url, params={"access_token": token}, json={"unionid": ZHANGSAN.unionid}))
    assert body["result"] == {"contact_type": 0, "userid": "zhangsan"}
    assert isinstance(body["request_id"], str)
    outsider = err(
        client.post(url, params={"access_token": token}, json={"unionid": OUTSIDER.unionid}), 60121
    )
    assert "request_id" in outsider
    err(client.post(url, params={"access_token": token}, json={}), 400002)


@pytest.mark.parametrize(("token", "sub_code"), [("", "40000"), ("bogus", "40014")])
def test_topapi_auth_errors(client: httpx.Client, token: str, sub_code: str) -> None:
    for path in ("/topapi/user/getbyunionid", "/topapi/v2/user/get", "/topapi/v2/user/getuserinfo"):
        body = err(client.post(OAPI + path, params={"access_token": token}, json={}), 88)
        assert body["sub_code"] == sub_code
        assert isinstance(body["sub_msg"], str)
        assert isinstance(body["request_id"], str)


def test_topapi_token_only_from_query(client: httpx.Client) -> None:
    token = _corp_token(client)
    body = err(
        client.post(
            f"{OAPI}/topapi/user/getbyunionid",
            json={"unionid": "x"},
            headers={"x-acs-dingtalk-access-token": token},
        ),
        88,
    )
    assert body["sub_code"] == "40000"


def test_topapi_expired_token(client: httpx.Client, clock: Clock) -> None:
    token = _corp_token(client)
    clock.t += 7201
    body = err(
        client.post(
            f"{OAPI}/topapi/v2/user/get",
            params={"access_token": token},
            json={"userid": "zhangsan"},
        ),
        88,
    )
    assert body["sub_code"] == "40014"


def test_user_get_detail(client: httpx.Client) -> None:
    token = _corp_token(client)
    body = ok(
        client.post(
            f"{OAPI}/topapi/v2/user/get",
            params={"access_token": token},
            json={"userid": "zhangsan", "language": "zh_CN"},
        )
    )
    result = body["result"]
    for key in (
        "userid",
        "unionid",
        "name",
        "avatar",
        "state_code",
        "manager_userid",
        "mobile",
        "hide_mobile",
        "telephone",
        "job_number",
        "title",
        "email",
        "work_place",
        "remark",
        "dept_id_list",
        "dept_order_list",
        "extension",
        "hired_date",
        "active",
        "real_authed",
        "senior",
        "admin",
        "boss",
        "leader_in_dept",
        "role_list",
        "union_emp_ext",
    ):
        assert key in result, key
    assert result["userid"] == "zhangsan"
    assert result["unionid"] == ZHANGSAN.unionid
    assert result["name"] == "张三"
    assert result["dept_id_list"] == [1, 100]
    assert [d["dept_id"] for d in result["dept_order_list"]] == [1, 100]
    assert result["email"] == ZHANGSAN.email
    assert result["title"] == ZHANGSAN.title
    assert result["job_number"] == ZHANGSAN.job_number
    lisi = ok(
        client.post(
            f"{OAPI}/topapi/v2/user/get", params={"access_token": token}, json={"userid": "lisi"}
        )
    )["result"]
    assert lisi["dept_id_list"] == [200]
    err(
        client.post(
            f"{OAPI}/topapi/v2/user/get", params={"access_token": token}, json={"userid": "nobody"}
        ),
        33012,
    )


def test_new_style_app_token_works_on_topapi(client: httpx.Client) -> None:
    resp = client.post(
        "https://api.dingtalk.com/v1.0/oauth2/accessToken",
        json={"appKey": DEFAULT_APP_KEY, "appSecret": DEFAULT_APP_SECRET},
    )
    token = resp.json()["accessToken"]
    ok(
        client.post(
            f"{OAPI}/topapi/user/getbyunionid",
            params={"access_token": token},
            json={"unionid": LISI.unionid},
        )
    )


def test_jsapi_code_to_userid(fake: FakeDingTalk, client: httpx.Client, clock: Clock) -> None:
    token = _corp_token(client)
    url = f"{OAPI}/topapi/v2/user/getuserinfo"
    code = fake.issue_jsapi_code(ZHANGSAN.unionid, DEFAULT_CORP_ID)
    result = ok(client.post(url, params={"access_token": token}, json={"code": code}))["result"]
    assert set(result) == {
        "userid",
        "unionid",
        "associated_unionid",
        "device_id",
        "sys",
        "sys_level",
        "name",
    }
    assert result["userid"] == "zhangsan"
    assert result["sys"] is True
    assert result["sys_level"] == 1
    err(client.post(url, params={"access_token": token}, json={"code": code}), 40078)
    expired = fake.issue_jsapi_code(LISI.unionid)
    clock.t += 301
    token = _corp_token(client)
    err(client.post(url, params={"access_token": token}, json={"code": expired}), 40078)


def test_jsapi_code_bound_to_corp(fake: FakeDingTalk, client: httpx.Client) -> None:
    fake.add_app(FakeApp(app_key="corp2app", app_secret="s2", corp_id="dingothercorp"))
    other = ok(client.get(f"{OAPI}/gettoken", params={"appkey": "corp2app", "appsecret": "s2"}))
    code = fake.issue_jsapi_code(ZHANGSAN.unionid, DEFAULT_CORP_ID)
    err(
        client.post(
            f"{OAPI}/topapi/v2/user/getuserinfo",
            params={"access_token": other["access_token"]},
            json={"code": code},
        ),
        40078,
    )


def test_oauth2_authcode_is_not_a_jsapi_code(fake: FakeDingTalk, client: httpx.Client) -> None:
    from .conftest import oauth2_url

    auth_code = param(fake.scan(oauth2_url(), ZHANGSAN.unionid), "authCode")
    err(
        client.post(
            f"{OAPI}/topapi/v2/user/getuserinfo",
            params={"access_token": _corp_token(client)},
            json={"code": auth_code},
        ),
        40078,
    )


def test_unknown_paths(client: httpx.Client) -> None:
    assert client.get(f"{OAPI}/nope").status_code == 404
    err(client.post(f"{OAPI}/topapi/nope", params={"access_token": "x"}, json={}), 22)


@pytest.mark.parametrize(
    "path",
    [
        "/sns/gettoken",
        "/sns/get_persistent_code",
        "/sns/get_sns_token",
        "/sns/getuserinfo",
        "/sns/getuserinfo_bycode",
        "/gettoken",
        "/topapi/user/getbyunionid",
        "/topapi/v2/user/get",
        "/topapi/v2/user/getuserinfo",
    ],
)
@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"[1,2]", b'{"tmp_auth_code": 5, "unionid": [], "userid": {}}', b"\xff\xfe"],
)
def test_garbage_never_500(client: httpx.Client, path: str, body: bytes) -> None:
    for method in ("GET", "POST"):
        resp = client.request(
            method,
            OAPI + path + "?access_token=&timestamp=abc&accessKey=x",
            content=body,
            headers={"content-type": "application/json"},
        )
        assert resp.status_code == 200
        assert resp.json()["errcode"] != 0
