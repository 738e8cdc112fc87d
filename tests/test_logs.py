"""No credential reaches a log line through httpx or the ASGI server's access log."""

from __future__ import annotations

import logging

import httpx
import pytest

from dingmw.logs import redact
from dingmw.testing import DEFAULT_APP_SECRET, ZHANGSAN, FakeDingTalk

from .support import ClientFactory, login, make_settings


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "GET https://oapi.dingtalk.com/gettoken?appkey=k&appsecret=s3cr3t",
            "GET https://oapi.dingtalk.com/gettoken?appkey=k&appsecret=***",
        ),
        ("/sns/getuserinfo?sns_token=abc def", "/sns/getuserinfo?sns_token=*** def"),
        ("/cb?authCode=AC&state=S", "/cb?authCode=***&state=S"),
        ("/cb?code=C&state=S", "/cb?code=***&state=S"),
        ("/x?signature=a%2Bb%3D&timestamp=1", "/x?signature=***&timestamp=1"),
        ("/x?country=cn&access_token=T", "/x?country=cn&access_token=***"),
        (
            "/dingtalk/logout?id_token_hint=eyJ.eyJ.sig&state=s",
            "/dingtalk/logout?id_token_hint=***&state=s",
        ),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_httpx_request_logs_carry_no_secret(
    client_factory: ClientFactory, fake: FakeDingTalk, caplog: pytest.LogCaptureFixture
) -> None:
    client = client_factory(make_settings("sns", enrich="detail"))
    with caplog.at_level(logging.DEBUG):
        assert login(client, fake, ZHANGSAN.unionid).status_code == 302
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "sns/gettoken" in logged  # httpx did log the calls...
    assert DEFAULT_APP_SECRET not in logged  # ...without the secret
    tokens = [r.url for r in fake.requests if "access_token=" in str(r.url)]
    assert tokens
    for url in tokens:
        token = httpx.URL(str(url)).params["access_token"]
        assert token not in logged
