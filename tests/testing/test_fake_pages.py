"""Browser pages, widget scripts and the scan helper (dingtalk-api.md §1, §4.1, §5, §6)."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest

from dingmw.testing import (
    DEFAULT_APP_KEY,
    DEFAULT_CORP_ID,
    LISI,
    ZHANGSAN,
    FakeApp,
    FakeDingTalk,
    ScanError,
)

from .conftest import CALLBACK, LOGIN, OAPI, oauth2_url, param, sns_url


def test_oauth2_page_lists_users_with_stable_selectors(
    fake: FakeDingTalk, client: httpx.Client
) -> None:
    page = client.get(oauth2_url())
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    for user in fake.users.values():
        assert f'class="fake-dingtalk-user" data-unionid="{user.unionid}"' in page.text
    assert 'class="fake-dingtalk-deny"' in page.text
    assert "<script src" not in page.text
    assert "<link" not in page.text


def test_oauth2_scan_redirect(fake: FakeDingTalk) -> None:
    location = fake.scan(oauth2_url(state="a b&c"), ZHANGSAN.unionid)
    assert location.startswith(CALLBACK + "?authCode=")
    assert param(location, "state") == "a b&c"
    assert "code" not in httpx.URL(location).params
    fake.oauth2_also_code = True
    both = fake.scan(oauth2_url(), ZHANGSAN.unionid)
    assert param(both, "code") == param(both, "authCode")


def test_oauth2_deny(fake: FakeDingTalk) -> None:
    location = fake.scan(oauth2_url(), ZHANGSAN.unionid, deny=True)
    assert location == CALLBACK + "?error=access_denied&state=st4te"


def test_oauth2_iframe_mode(fake: FakeDingTalk, client: httpx.Client) -> None:
    url = oauth2_url(iframe="true")
    page = client.get(url)
    assert 'window.parent.postMessage(d, "*")' in page.text
    redirect_url = fake.scan(url, LISI.unionid)
    assert redirect_url.startswith(CALLBACK + "?authCode=")
    query = url.split("?", 1)[1]
    denied = client.post(f"{LOGIN}/oauth2/fake-confirm", data={"q": query, "deny": "1"})
    assert denied.json() == {"success": False, "errorMsg": "用户拒绝授权"}
    with pytest.raises(ScanError):
        fake.scan(url, LISI.unionid, deny=True)


@pytest.mark.parametrize(
    ("override", "text"),
    [
        ({"client_id": "unknown"}, "client_id"),
        ({"response_type": "token"}, "response_type"),
        ({"scope": "corpid"}, "scope"),
        ({"prompt": ""}, "prompt"),
        ({"redirect_uri": ""}, "redirect_uri"),
        ({"redirect_uri": "javascript:alert(1)"}, "redirect_uri"),
    ],
)
def test_oauth2_validation(
    fake: FakeDingTalk, client: httpx.Client, override: dict[str, str], text: str
) -> None:
    resp = client.get(oauth2_url(**override))
    assert resp.status_code == 400
    assert text in resp.text
    with pytest.raises(ScanError):
        fake.scan(oauth2_url(**override), ZHANGSAN.unionid)


def test_redirect_domains(fake: FakeDingTalk, client: httpx.Client) -> None:
    fake.add_app(FakeApp(app_key="locked", app_secret="s", redirect_domains=("app.example.com",)))
    assert "无权限访问" in client.get(oauth2_url(client_id="locked")).text
    assert "无权限访问" in client.get(sns_url(appid="locked")).text
    good = "https://app.example.com/cb"
    assert fake.scan(oauth2_url(client_id="locked", redirect_uri=good), LISI.unionid).startswith(
        good + "?authCode="
    )


def test_sns_qr_frame_flow(fake: FakeDingTalk, client: httpx.Client) -> None:
    goto = sns_url()
    frame = client.get(f"{LOGIN}/login/qrcode.htm?goto={quote(goto, safe='')}&style=border%3Anone")
    assert frame.status_code == 200
    assert f'data-unionid="{ZHANGSAN.unionid}"' in frame.text
    assert 'window.parent.postMessage(d.loginTmpCode, "*")' in frame.text
    tmp = client.post(f"{LOGIN}/login/fake-scan", data={"goto": goto, "unionid": ZHANGSAN.unionid})
    login_tmp_code = tmp.json()["loginTmpCode"]
    done = client.get(goto + "&loginTmpCode=" + login_tmp_code)
    assert done.status_code == 302
    location = done.headers["location"]
    assert location.startswith(CALLBACK + "?code=")
    assert param(location, "state") == "STATE"
    again = client.get(goto + "&loginTmpCode=" + login_tmp_code)
    assert again.status_code == 400  # loginTmpCode is single use


def test_login_tmp_code_bound_to_app(fake: FakeDingTalk, client: httpx.Client) -> None:
    fake.add_app(FakeApp(app_key="appB", app_secret="s"))
    tmp = client.post(
        f"{LOGIN}/login/fake-scan",
        data={"goto": sns_url(appid="appB"), "unionid": ZHANGSAN.unionid},
    )
    resp = client.get(sns_url() + "&loginTmpCode=" + tmp.json()["loginTmpCode"])
    assert resp.status_code == 400


def test_sns_scan_and_account_page(fake: FakeDingTalk, client: httpx.Client) -> None:
    assert fake.scan(sns_url(), LISI.unionid).startswith(CALLBACK + "?code=")
    page = client.get(sns_url())  # no loginTmpCode: the account login page
    assert page.status_code == 200
    assert 'class="fake-dingtalk-user"' in page.text
    denied = fake.scan(sns_url(), LISI.unionid, deny=True)
    assert denied == CALLBACK + "?error=access_denied&state=STATE"
    hosted = fake.scan(sns_url(path="/connect/qrconnect"), LISI.unionid)
    assert hosted.startswith(CALLBACK + "?code=")


def test_sns_validation(client: httpx.Client) -> None:
    assert client.get(sns_url(appid="nobody")).status_code == 400
    assert client.get(sns_url(scope="bogus")).status_code == 400
    assert (
        client.get(f"{OAPI}/connect/oauth2/sns_authorize?appid={DEFAULT_APP_KEY}").status_code
        == 400
    )
    assert client.get(f"{LOGIN}/login/qrcode.htm?goto=nonsense").status_code == 400


def test_snsapi_auth_is_silent_inside_the_client(fake: FakeDingTalk, client: httpx.Client) -> None:
    fake.client_user = LISI.unionid
    resp = client.get(
        sns_url(scope="snsapi_auth"),
        headers={"user-agent": "Mozilla/5.0 AliApp(DingTalk/7.0.50) DingTalk/7.0.50"},
    )
    assert resp.status_code == 302
    code = param(resp.headers["location"], "code")
    assert code


def test_scan_unknown_user_or_url(fake: FakeDingTalk) -> None:
    with pytest.raises(ScanError):
        fake.scan(oauth2_url(), "fakeunion-nobody")
    with pytest.raises(ScanError):
        fake.scan("https://example.com/authorize?x=1", ZHANGSAN.unionid)


def test_html_escaping(fake: FakeDingTalk, client: httpx.Client) -> None:
    from dingmw.testing import FakeUser

    fake.add_user(FakeUser(unionid='evil"<x>', nick="<script>alert(1)</script>"))
    page = client.get(oauth2_url(state='"><script>alert(2)</script>'))
    assert "<script>alert(1)</script>" not in page.text
    assert "<script>alert(2)</script>" not in page.text
    assert 'data-unionid="evil&quot;&lt;x&gt;"' in page.text


@pytest.mark.parametrize(
    ("path", "needle"),
    [
        ("/dinglogin/ddLogin.js", "window.DDLogin"),
        ("/h5-dingtalk-login/ddlogin.js", "window.DTFrameLogin"),
        ("/dingtalk-jsapi/dingtalk.open.js", "window.dd"),
    ],
)
def test_scripts(client: httpx.Client, path: str, needle: str) -> None:
    resp = client.get("http://127.0.0.1:9999" + path)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/javascript")
    assert needle in resp.text
    assert '"http://127.0.0.1:9999"' in resp.text  # the fake's own origin, not DingTalk's


def test_dtframelogin_script_details(client: httpx.Client) -> None:
    js = client.get(f"{LOGIN}/h5-dingtalk-login/ddlogin.js").text
    assert '"/oauth2/auth?iframe=true&redirect_uri=" + p.redirect_uri' in js
    assert 'new RegExp("[?&]" + name + "=([^&]+)")' in js
    # As loose as the real widget's /login.dingtalk.com/.test(origin): a host pattern.
    assert "new RegExp(new URL(ORIGIN).hostname)" in js
    assert "looseHost.test(event.origin)" in js
    assert "done = true" in js
    for msg in ("Missing parameters", "Element not found", "Browser not support"):
        assert msg in js


def test_ddlogin_script_details(client: httpx.Client) -> None:
    js = client.get(f"{LOGIN}/dinglogin/ddLogin.js").text
    assert '"/login/qrcode.htm?goto=" + a.goto' in js
    assert '"&style=" + encodeURIComponent(a.style)' in js
    assert '"365px"' in js
    assert '"400px"' in js


def test_jsapi_endpoint(fake: FakeDingTalk, client: httpx.Client) -> None:
    pre = client.options(f"{LOGIN}/fake/jsapi/requestAuthCode")
    assert pre.status_code == 204
    assert pre.headers["access-control-allow-origin"] == "*"
    fake.client_user = LISI.unionid
    resp = client.post(
        f"{LOGIN}/fake/jsapi/requestAuthCode", content=b'{"corpId":"%s"}' % DEFAULT_CORP_ID.encode()
    )
    assert resp.headers["access-control-allow-origin"] == "*"
    code = resp.json()["code"]
    token = client.get(
        f"{OAPI}/gettoken",
        params={
            "appkey": DEFAULT_APP_KEY,
            "appsecret": fake.apps[DEFAULT_APP_KEY].app_secret,
        },
    ).json()["access_token"]
    result = client.post(
        f"{OAPI}/topapi/v2/user/getuserinfo", params={"access_token": token}, json={"code": code}
    ).json()
    assert result["result"]["userid"] == "lisi"
    missing = client.post(f"{LOGIN}/fake/jsapi/requestAuthCode", content=b"{}")
    assert "errorMessage" in missing.json()


def test_js_text_in_jsapi_script(client: httpx.Client) -> None:
    js = client.get(f"{LOGIN}/dingtalk-jsapi/dingtalk.open.js").text
    assert "/DingTalk/i.test(ua)" in js
    assert '"notInDingTalk"' in js
    assert "onSuccess" in js
    assert "onFail" in js
    assert "{ code: code }" in js
