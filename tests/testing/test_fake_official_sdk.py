"""The official SDK (PyPI ``alibabacloud-dingtalk``) pointed at the fake over real HTTP.

If the SDK or uvicorn is missing this test fails (it must not skip): the fake's claim to speak
DingTalk's wire format is checked here against code DingTalk publishes.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alibabacloud_dingtalk.contact_1_0 import models as contact_models
from alibabacloud_dingtalk.contact_1_0.client import Client as ContactClient
from alibabacloud_dingtalk.oauth2_1_0 import models as oauth2_models
from alibabacloud_dingtalk.oauth2_1_0.client import Client as OAuth2Client
from alibabacloud_tea_openapi import models as openapi_models
from alibabacloud_tea_util import models as util_models

from dingmw.testing import DEFAULT_APP_KEY, DEFAULT_APP_SECRET, ZHANGSAN, FakeDingTalk

from ..servers import free_socket, serve_asgi
from .conftest import oauth2_url, param


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[FakeDingTalk, int]]:
    fake = FakeDingTalk()
    sock = free_socket()
    with serve_asgi(fake.asgi_app, sock=sock):
        yield fake, sock.getsockname()[1]


def _config(port: int) -> openapi_models.Config:
    return openapi_models.Config(protocol="http", endpoint=f"127.0.0.1:{port}")


def test_sdk_get_user_token_and_get_user(served: tuple[FakeDingTalk, int]) -> None:
    fake, port = served
    code = param(fake.scan(oauth2_url(scope="openid corpid"), ZHANGSAN.unionid), "authCode")

    oauth2 = OAuth2Client(_config(port))
    token = oauth2.get_user_token(
        oauth2_models.GetUserTokenRequest(
            client_id=DEFAULT_APP_KEY,
            client_secret=DEFAULT_APP_SECRET,
            code=code,
            grant_type="authorization_code",
        )
    )
    assert token.status_code == 200
    assert token.body.access_token
    assert token.body.refresh_token
    assert token.body.expire_in == 7200
    assert token.body.corp_id == "dingfakecorp0000000000000001"

    contact = ContactClient(_config(port))
    user = contact.get_user_with_options(
        "me",
        contact_models.GetUserHeaders(x_acs_dingtalk_access_token=token.body.access_token),
        util_models.RuntimeOptions(),  # get_user() takes no headers; this is its body
    )
    assert user.body.union_id == ZHANGSAN.unionid
    assert user.body.nick == "张三"
    assert user.body.open_id == ZHANGSAN.openid_for(DEFAULT_APP_KEY)
    assert user.body.email == ZHANGSAN.email

    # what went over the wire is what the SDK documents (dingtalk-api.md §4.2)
    sent = [r for r in fake.requests if r.url.endswith("/v1.0/oauth2/userAccessToken")][-1]
    assert sent.method == "POST"
    assert sent.headers["content-type"].startswith("application/json")
    assert b'"grantType":"authorization_code"' in sent.body
    got = [r for r in fake.requests if r.url.endswith("/v1.0/contact/users/me")][-1]
    assert got.headers["x-acs-dingtalk-access-token"] == token.body.access_token


def test_sdk_sees_the_error_shape(served: tuple[FakeDingTalk, int]) -> None:
    _, port = served
    oauth2 = OAuth2Client(_config(port))
    with pytest.raises(Exception) as info:  # noqa: PT011 (the SDK raises its own TeaException)
        oauth2.get_user_token(
            oauth2_models.GetUserTokenRequest(
                client_id=DEFAULT_APP_KEY,
                client_secret=DEFAULT_APP_SECRET,
                code="never-issued",
                grant_type="authorization_code",
            )
        )
    assert getattr(info.value, "code", None) == "invalidParameter.authCode.notFound"
    assert getattr(info.value, "data", {}).get("statusCode") == 400


def test_sdk_app_access_token(served: tuple[FakeDingTalk, int]) -> None:
    _, port = served
    resp = OAuth2Client(_config(port)).get_access_token(
        oauth2_models.GetAccessTokenRequest(app_key=DEFAULT_APP_KEY, app_secret=DEFAULT_APP_SECRET)
    )
    assert resp.body.expire_in == 7200
    assert resp.body.access_token
