"""DINGMW_LOGIN_PAGE: DingTalk's own login page (`dingtalk`) or dingmw's QR page (`qr`, the
middleware's default), for each flow, through both adapters."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from dingmw import ConfigError, Settings
from dingmw.config import DEFAULT_LOGIN_URL, DEFAULT_OAPI_URL
from dingmw.testing import DEFAULT_APP_KEY, DEFAULT_CORP_ID, ZHANGSAN, FakeDingTalk

from .support import FLOWS, HTML, ClientFactory, make_settings, page_config

IN_CLIENT_UA = "Mozilla/5.0 (iPhone) AliApp(DingTalk/7.6.0) DingTalk/7.6.0"
# DingTalk's hosted login page per flow (dingtalk-api.md §4.1 and §1.2).
HOSTED = {
    "oauth2": f"{DEFAULT_LOGIN_URL}/oauth2/auth",
    "sns": f"{DEFAULT_OAPI_URL}/connect/qrconnect",
    "bycode": f"{DEFAULT_OAPI_URL}/connect/qrconnect",
}


def test_the_middleware_shows_its_qr_page_by_default(client_factory: ClientFactory) -> None:
    response = client_factory().get("/dingtalk/login", params={"next": "/x"}, headers=HTML)
    assert response.status_code == 200
    assert page_config(response)["state"]


@pytest.mark.parametrize("flow", FLOWS)
def test_login_page_dingtalk_sends_the_browser_to_dingtalks_page(
    client_factory: ClientFactory, fake: FakeDingTalk, flow: str
) -> None:
    client = client_factory(make_settings(flow, login_page="dingtalk"))
    start = client.get("/private?a=1", headers=HTML)
    response = client.get(start.headers["location"], headers=HTML)
    assert response.status_code == 302
    location = response.headers["location"]
    parts = urlsplit(location)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == HOSTED[flow]
    query = parse_qs(parts.query)
    assert query["redirect_uri"] == ["http://testserver/dingtalk/callback"]
    assert "iframe" not in query
    assert query["client_id" if flow == "oauth2" else "appid"] == [DEFAULT_APP_KEY]
    assert "_state_" in response.headers["set-cookie"]  # bound to this browser as ever
    back = client.get(fake.scan(location, ZHANGSAN.unionid), headers=HTML)
    assert back.status_code == 302, back.text
    assert back.headers["location"] == "/private?a=1"
    assert client.get("/dingtalk/me").json()["unionid"] == ZHANGSAN.unionid


def test_inside_the_dingtalk_client_the_page_logs_in_silently(
    client_factory: ClientFactory,
) -> None:
    """DingTalk's login page cannot use the client's silent login: dingmw's page does."""
    settings = make_settings(login_page="dingtalk", corp_id=DEFAULT_CORP_ID, enrich="detail")
    response = client_factory(settings).get(
        "/dingtalk/login", headers={**HTML, "user-agent": IN_CLIENT_UA}
    )
    assert response.status_code == 200
    assert page_config(response)["in_client"] == {"corp_id": DEFAULT_CORP_ID}


@pytest.mark.parametrize(
    ("value", "expected"), [("dingtalk", "dingtalk"), ("QR", "qr"), ("", None)]
)
def test_login_page_from_env(value: str, expected: str | None) -> None:
    env = {
        "DINGMW_APP_KEY": "k",
        "DINGMW_APP_SECRET": "s",
        "DINGMW_SECRET_KEY": "x" * 32,
        "DINGMW_LOGIN_PAGE": value,
    }
    assert Settings.from_env(env).login_page == expected


def test_a_bad_login_page_names_the_variable() -> None:
    env = {
        "DINGMW_APP_KEY": "k",
        "DINGMW_APP_SECRET": "s",
        "DINGMW_SECRET_KEY": "x" * 32,
        "DINGMW_LOGIN_PAGE": "popup",
    }
    with pytest.raises(ConfigError, match="DINGMW_LOGIN_PAGE must be one of dingtalk, qr"):
        Settings.from_env(env)
