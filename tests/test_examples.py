"""The examples in examples/ log a person in against the fake DingTalk."""

from __future__ import annotations

import httpx

from dingmw import ASGIMiddleware
from dingmw.testing import ZHANGSAN, FakeDingTalk

from .support import HTML, TestClient, load_example, login, make_settings


def test_flask_example(fake: FakeDingTalk) -> None:
    flask = load_example("flask_app").create_app(make_settings(), transport=fake.transport())
    client = httpx.Client(transport=httpx.WSGITransport(app=flask), base_url="http://testserver")
    assert client.get("/health").text == "ok"
    assert client.get("/", headers=HTML).status_code == 302
    assert login(client, fake, ZHANGSAN.unionid, next_path="/").status_code == 302
    page = client.get("/")
    assert "你好, 张三" in page.text
    assert f"REMOTE_USER = {ZHANGSAN.unionid}" in page.text


def test_starlette_example(fake: FakeDingTalk) -> None:
    example = load_example("starlette_app")
    app = ASGIMiddleware(example.inner, make_settings(), transport=fake.transport())
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
        assert client.get("/health").text == "ok"
        assert client.get("/", headers=HTML).status_code == 302
        assert login(client, fake, ZHANGSAN.unionid, next_path="/").status_code == 302
        page = client.get("/")
        assert "你好, 张三" in page.text
        assert ZHANGSAN.unionid in page.text
