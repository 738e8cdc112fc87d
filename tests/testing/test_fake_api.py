"""api.dingtalk.com v1.0 wire format (dingtalk-api.md §3.2, §4.2, §4.3, §0, §10)."""

from __future__ import annotations

from typing import Any

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
)

from .conftest import API, Clock, oauth2_url, param

TOKEN_URL = f"{API}/v1.0/oauth2/userAccessToken"
ME = f"{API}/v1.0/contact/users/me"


def api_error(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body: dict[str, Any] = resp.json()
    assert body["code"] == code
    assert isinstance(body["message"], str)
    assert isinstance(body["requestid"], str)
    assert "errcode" not in body
    assert resp.headers["x-acs-request-id"] == body["requestid"]
    return body


def _code(fake: FakeDingTalk, unionid: str = ZHANGSAN.unionid, **kw: str) -> str:
    return param(fake.scan(oauth2_url(**kw), unionid), "authCode")


def _exchange(client: httpx.Client, code: str, **override: str) -> httpx.Response:
    body = {
        "clientId": DEFAULT_APP_KEY,
        "clientSecret": DEFAULT_APP_SECRET,
        "code": code,
        "grantType": "authorization_code",
        **override,
    }
    return client.post(TOKEN_URL, json=body)


def test_user_access_token_shape_and_headers(fake: FakeDingTalk, client: httpx.Client) -> None:
    resp = _exchange(client, _code(fake))
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/json;charset=utf-8"
    assert resp.headers["x-acs-request-id"]
    assert resp.headers["x-acs-trace-id"]
    body = resp.json()
    assert set(body) == {"accessToken", "refreshToken", "expireIn"}  # no corpid scope
    assert body["expireIn"] == 7200


def test_corpid_scope_adds_corp_id(fake: FakeDingTalk, client: httpx.Client) -> None:
    body = _exchange(client, _code(fake, scope="openid corpid")).json()
    assert body["corpId"] == DEFAULT_CORP_ID
    outsider = _exchange(client, _code(fake, OUTSIDER.unionid, scope="openid corpid")).json()
    assert "corpId" not in outsider


def test_auth_code_single_use_and_expiry(
    fake: FakeDingTalk, client: httpx.Client, clock: Clock
) -> None:
    code = _code(fake)
    assert _exchange(client, code).status_code == 200
    api_error(_exchange(client, code), 400, "invalidParameter.authCode.notFound")
    api_error(_exchange(client, "never-issued"), 400, "invalidParameter.authCode.notFound")
    late = _code(fake)
    fake.advance(301)
    api_error(_exchange(client, late), 400, "invalidParameter.authCode.notFound")


def test_auth_code_bound_to_app(fake: FakeDingTalk, client: httpx.Client) -> None:
    other = fake.add_app(FakeApp(app_key="dingappB", app_secret="secretB"))
    code = _code(fake, client_id=other.app_key)
    api_error(_exchange(client, code), 400, "invalidParameter.authCode.notFound")
    ok = _exchange(client, code, clientId=other.app_key, clientSecret=other.app_secret)
    assert ok.status_code == 200


def test_bad_client(fake: FakeDingTalk, client: httpx.Client) -> None:
    code = _code(fake)
    api_error(_exchange(client, code, clientSecret="wrong"), 400, "invalidClientIdOrSecret")
    api_error(_exchange(client, code, clientId="nobody"), 400, "invalidClientIdOrSecret")
    assert _exchange(client, code).status_code == 200  # a refused attempt does not burn it


def test_json_required(fake: FakeDingTalk, client: httpx.Client) -> None:
    form = {
        "clientId": DEFAULT_APP_KEY,
        "clientSecret": DEFAULT_APP_SECRET,
        "code": "x",
        "grantType": "authorization_code",
    }
    api_error(client.post(TOKEN_URL, data=form), 400, "Missingbody")
    api_error(client.post(TOKEN_URL), 400, "Missingbody")
    resp = client.post(TOKEN_URL, content=b"not json", headers={"content-type": "application/json"})
    assert resp.status_code == 400
    snake = {
        "client_id": DEFAULT_APP_KEY,
        "client_secret": DEFAULT_APP_SECRET,
        "code": "x",
        "grant_type": "authorization_code",
    }
    api_error(client.post(TOKEN_URL, json=snake), 400, "MissingclientId")


def test_same_user_token_while_valid_and_refresh(
    fake: FakeDingTalk, client: httpx.Client, clock: Clock
) -> None:
    first = _exchange(client, _code(fake)).json()
    second = _exchange(client, _code(fake)).json()
    assert second["accessToken"] == first["accessToken"]
    clock.t += 7201
    api_error(
        client.get(ME, headers={"x-acs-dingtalk-access-token": first["accessToken"]}),
        400,
        "InvalidAuthentication",
    )
    refreshed = client.post(
        TOKEN_URL,
        json={
            "clientId": DEFAULT_APP_KEY,
            "clientSecret": DEFAULT_APP_SECRET,
            "grantType": "refresh_token",
            "refreshToken": first["refreshToken"],
        },
    )
    assert refreshed.status_code == 200
    new = refreshed.json()
    assert new["accessToken"] != first["accessToken"]
    me = client.get(ME, headers={"x-acs-dingtalk-access-token": new["accessToken"]})
    assert me.json()["unionId"] == ZHANGSAN.unionid
    bad = client.post(
        TOKEN_URL,
        json={
            "clientId": DEFAULT_APP_KEY,
            "clientSecret": DEFAULT_APP_SECRET,
            "grantType": "refresh_token",
            "refreshToken": "bogus",
        },
    )
    assert bad.status_code == 400
    clock.t += 31 * 24 * 3600
    expired = client.post(
        TOKEN_URL,
        json={
            "clientId": DEFAULT_APP_KEY,
            "clientSecret": DEFAULT_APP_SECRET,
            "grantType": "refresh_token",
            "refreshToken": first["refreshToken"],
        },
    )
    assert expired.status_code == 400


def test_app_access_token(client: httpx.Client, clock: Clock) -> None:
    url = f"{API}/v1.0/oauth2/accessToken"
    resp = client.post(url, json={"appKey": DEFAULT_APP_KEY, "appSecret": DEFAULT_APP_SECRET})
    assert resp.status_code == 200
    body = resp.json()
    assert set(body) == {"accessToken", "expireIn"}
    assert body["expireIn"] == 7200
    again = client.post(url, json={"appKey": DEFAULT_APP_KEY, "appSecret": DEFAULT_APP_SECRET})
    assert again.json()["accessToken"] == body["accessToken"]
    api_error(
        client.post(url, json={"appKey": DEFAULT_APP_KEY, "appSecret": "x"}),
        400,
        "invalidClientIdOrSecret",
    )
    api_error(
        client.post(url, data={"appKey": DEFAULT_APP_KEY, "appSecret": "x"}), 400, "Missingbody"
    )


def test_contact_user_me(fake: FakeDingTalk, client: httpx.Client) -> None:
    token = _exchange(client, _code(fake)).json()["accessToken"]
    resp = client.get(ME, headers={"x-acs-dingtalk-access-token": token})
    assert resp.status_code == 200
    assert resp.headers["x-acs-request-id"]
    body = resp.json()
    assert set(body) <= {
        "nick",
        "avatarUrl",
        "mobile",
        "openId",
        "unionId",
        "email",
        "stateCode",
        "visitor",
        "loginEmail",
    }
    assert body["unionId"] == ZHANGSAN.unionid
    assert body["openId"] == ZHANGSAN.openid_for(DEFAULT_APP_KEY)
    assert body["nick"] == "张三"
    assert body["mobile"] == ZHANGSAN.mobile
    assert body["email"] == ZHANGSAN.email
    by_id = client.get(
        f"{API}/v1.0/contact/users/{ZHANGSAN.unionid}",
        headers={"x-acs-dingtalk-access-token": token},
    )
    assert by_id.json() == body
    other = client.get(
        f"{API}/v1.0/contact/users/{LISI.unionid}", headers={"x-acs-dingtalk-access-token": token}
    )
    assert other.status_code == 403


@pytest.mark.parametrize(
    ("how", "code"),
    [
        ("missing", "AuthenticationFailed.MissingParameter"),
        ("query", "AuthenticationFailed.MissingParameter"),
        ("bearer", "AuthenticationFailed.MissingParameter"),
        ("bogus", "InvalidAuthentication"),
    ],
)
def test_contact_user_token_placement(
    fake: FakeDingTalk, client: httpx.Client, how: str, code: str
) -> None:
    token = _exchange(client, _code(fake)).json()["accessToken"]
    if how == "missing":
        resp = client.get(ME)
    elif how == "query":
        resp = client.get(ME, params={"access_token": token})
    elif how == "bearer":
        resp = client.get(ME, headers={"Authorization": f"Bearer {token}"})
    else:
        resp = client.get(ME, headers={"x-acs-dingtalk-access-token": "bogus"})
    api_error(resp, 400, code)


def test_unknown_api_path(client: httpx.Client) -> None:
    api_error(client.get(f"{API}/v1.0/nope"), 404, "InvalidAction.NotFound")
    api_error(client.get(TOKEN_URL), 404, "InvalidAction.NotFound")
