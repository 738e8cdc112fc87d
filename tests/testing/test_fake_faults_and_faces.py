"""Fault injection, counters, recorded requests, and the three faces (sync, async, ASGI)."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from dingmw.testing import DEFAULT_APP_KEY, DEFAULT_APP_SECRET, ZHANGSAN, FakeDingTalk

from .conftest import API, OAPI, oauth2_url, param

GETTOKEN = f"{OAPI}/gettoken"
CREDS = {"appkey": DEFAULT_APP_KEY, "appsecret": DEFAULT_APP_SECRET}
TOKEN_URL = f"{API}/v1.0/oauth2/userAccessToken"


def test_inject_oapi_errcode(fake: FakeDingTalk, client: httpx.Client) -> None:
    fake.inject("/gettoken", errcode=-1, message="系统繁忙", times=2)
    for _ in range(2):
        resp = client.get(GETTOKEN, params=CREDS)
        assert resp.status_code == 200
        assert resp.json() == {"errcode": -1, "errmsg": "系统繁忙"}
    assert client.get(GETTOKEN, params=CREDS).json()["errcode"] == 0
    assert fake.calls["/gettoken"] == 3


def test_inject_sub_code(fake: FakeDingTalk, client: httpx.Client) -> None:
    fake.inject("/topapi/user/getbyunionid", errcode=88, sub_code="", message="")
    body = client.post(f"{OAPI}/topapi/user/getbyunionid?access_token=x", json={}).json()
    assert body["errcode"] == 88
    assert body["sub_code"] == ""
    assert "request_id" in body


def test_inject_api_error(fake: FakeDingTalk, client: httpx.Client) -> None:
    fake.inject(
        "/v1.0/oauth2/userAccessToken",
        code="Forbidden.AccessDenied.QpsLimitForApi",
        message="qps",
        status=403,
    )
    resp = client.post(TOKEN_URL, json={})
    assert resp.status_code == 403
    body = resp.json()
    assert body["code"] == "Forbidden.AccessDenied.QpsLimitForApi"
    assert body["message"] == "qps"
    assert body["requestid"] == resp.headers["x-acs-request-id"]
    fake.inject("/v1.0/oauth2/userAccessToken", code="SomeError")
    assert client.post(TOKEN_URL, json={}).status_code == 400


@pytest.mark.parametrize("path", ["/gettoken", "/v1.0/oauth2/accessToken", "/oauth2/auth"])
def test_inject_status_alone(fake: FakeDingTalk, client: httpx.Client, path: str) -> None:
    fake.inject(path, status=502)
    base = API if path.startswith("/v1.0") else OAPI
    assert client.get(base + path).status_code == 502


def test_inject_raw_body(fake: FakeDingTalk, client: httpx.Client) -> None:
    fake.inject("/gettoken", body=b"not json")
    resp = client.get(GETTOKEN, params=CREDS)
    assert resp.status_code == 200
    assert resp.content == b"not json"
    fake.inject("/v1.0/contact/users/me", body="<html>gateway</html>", status=504)
    resp = client.get(f"{API}/v1.0/contact/users/me")
    assert (resp.status_code, resp.text) == (504, "<html>gateway</html>")


@pytest.mark.parametrize("path", ["/gettoken", "/v1.0/oauth2/userAccessToken"])
def test_inject_ip_ban(fake: FakeDingTalk, client: httpx.Client, path: str) -> None:
    """The per-IP ban reply of dingtalk-api.md §7, on either API style, then normal answers."""
    base = API if path.startswith("/v1.0") else OAPI
    fake.inject(path, ip_ban=True)
    resp = client.get(base + path, params=CREDS)
    assert resp.status_code == 200
    body = resp.json()
    assert {k: body[k] for k in ("status", "wait", "source", "punish")} == {
        "status": 1111,
        "wait": 5,
        "source": "x5",
        "punish": "deny",
    }
    assert body["uuid"]
    assert "errcode" not in body
    assert "code" not in body
    fake.inject(path, ip_ban=True, status=403)
    assert client.get(base + path, params=CREDS).status_code == 403
    assert client.get(GETTOKEN, params=CREDS).json()["errcode"] == 0


def test_inject_delay_then_normal_answer(fake: FakeDingTalk, client: httpx.Client) -> None:
    fake.inject("/gettoken", delay=0.05)
    start = time.monotonic()
    assert client.get(GETTOKEN, params=CREDS).json()["errcode"] == 0
    assert time.monotonic() - start >= 0.05


def test_inject_timeout_sync(fake: FakeDingTalk, client: httpx.Client) -> None:
    fake.inject("/v1.0/oauth2/userAccessToken", timeout=True)
    with pytest.raises(httpx.ReadTimeout):
        client.post(TOKEN_URL, json={})
    assert client.post(TOKEN_URL, json={}).status_code == 400  # only once
    assert fake.calls["/v1.0/oauth2/userAccessToken"] == 2


async def test_inject_timeout_async(fake: FakeDingTalk) -> None:
    fake.inject("/gettoken", timeout=True, delay=0.01)
    async with httpx.AsyncClient(transport=fake.transport()) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get(GETTOKEN, params=CREDS)
        resp = await client.get(GETTOKEN, params=CREDS)
        assert resp.json()["errcode"] == 0


def test_inject_validation(fake: FakeDingTalk) -> None:
    with pytest.raises(ValueError, match="times"):
        fake.inject("/gettoken", errcode=1, times=0)


def test_requests_are_recorded(fake: FakeDingTalk, client: httpx.Client) -> None:
    client.post(TOKEN_URL, json={"clientId": "a"}, headers={"X-Extra": "1"})
    method, url, headers, body = fake.requests[-1]
    assert method == "POST"
    assert url == TOKEN_URL
    assert headers["content-type"] == "application/json"
    assert headers["x-extra"] == "1"
    assert body == b'{"clientId":"a"}'


async def test_async_client_full_oauth2(fake: FakeDingTalk) -> None:
    code = param(fake.scan(oauth2_url(), ZHANGSAN.unionid), "authCode")
    async with httpx.AsyncClient(transport=fake.transport()) as client:
        token = await client.post(
            TOKEN_URL,
            json={
                "clientId": DEFAULT_APP_KEY,
                "clientSecret": DEFAULT_APP_SECRET,
                "code": code,
                "grantType": "authorization_code",
            },
        )
        assert token.status_code == 200
        me = await client.get(
            f"{API}/v1.0/contact/users/me",
            headers={"x-acs-dingtalk-access-token": token.json()["accessToken"]},
        )
        assert me.json()["unionId"] == ZHANGSAN.unionid


async def test_asgi_face(fake: FakeDingTalk) -> None:
    fake.inject("/gettoken", delay=0.01, errcode=-1)
    transport = httpx.ASGITransport(app=fake.asgi_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://fake.test") as client:
        assert (await client.get("/gettoken", params=CREDS)).json()["errcode"] == -1
        token = (await client.get("/gettoken", params=CREDS)).json()["access_token"]
        body = (
            await client.post(
                "/topapi/user/getbyunionid",
                params={"access_token": token},
                json={"unionid": ZHANGSAN.unionid},
            )
        ).json()
        assert body["result"]["userid"] == "zhangsan"
        page = await client.get(oauth2_url(base="http://fake.test"))
        assert page.status_code == 200
        assert 'class="fake-dingtalk-user"' in page.text
        js = await client.get("/dinglogin/ddLogin.js")
        assert '"http://fake.test"' in js.text
        form = {"q": oauth2_url().split("?", 1)[1], "unionid": ZHANGSAN.unionid}
        confirm = await client.post("/oauth2/fake-confirm", data=form)
        assert confirm.status_code == 302
        code = param(confirm.headers["location"], "authCode")
        resp = await client.post(
            "/v1.0/oauth2/userAccessToken",
            json={
                "clientId": DEFAULT_APP_KEY,
                "clientSecret": DEFAULT_APP_SECRET,
                "code": code,
                "grantType": "authorization_code",
            },
        )
        assert resp.status_code == 200
        assert resp.headers["x-acs-trace-id"]
        missing = await client.get("/v1.0/contact/users/me")
        assert missing.status_code == 400
        assert (await client.head("/dinglogin/ddLogin.js")).status_code == 200
    assert fake.calls["/gettoken"] == 2
    assert fake.requests[0].url.startswith("http://fake.test/gettoken?")


def test_advance_moves_the_default_clock() -> None:
    fake = FakeDingTalk()
    before = fake.now()
    fake.advance(7201)
    assert fake.now() - before >= 7201
    with httpx.Client(transport=fake.transport()) as client:
        first = client.get(GETTOKEN, params=CREDS).json()["access_token"]
        fake.advance(7201)
        assert client.get(GETTOKEN, params=CREDS).json()["access_token"] != first


def test_thread_safety(fake: FakeDingTalk) -> None:
    errors: list[BaseException] = []
    codes: list[str] = []

    def worker() -> None:
        try:
            with httpx.Client(transport=fake.transport()) as client:
                for _ in range(20):
                    code = param(fake.scan(oauth2_url(), ZHANGSAN.unionid), "authCode")
                    resp = client.post(
                        TOKEN_URL,
                        json={
                            "clientId": DEFAULT_APP_KEY,
                            "clientSecret": DEFAULT_APP_SECRET,
                            "code": code,
                            "grantType": "authorization_code",
                        },
                    )
                    assert resp.status_code == 200
                    codes.append(resp.json()["accessToken"])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(set(codes)) == 1  # one token per (app, user) while valid
    assert fake.calls["/v1.0/oauth2/userAccessToken"] == 160
