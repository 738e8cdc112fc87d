"""The examples in examples/ log a person in against the fake DingTalk."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import httpx

from dingmw import ASGIMiddleware
from dingmw.testing import ZHANGSAN, FakeDingTalk

from .support import HTML, TestClient, login, make_settings

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_flask_example(fake: FakeDingTalk) -> None:
    flask = load("flask_app").create_app(make_settings(), transport=fake.transport())
    client = httpx.Client(transport=httpx.WSGITransport(app=flask), base_url="http://testserver")
    assert client.get("/health").text == "ok"
    assert client.get("/", headers=HTML).status_code == 302
    assert login(client, fake, ZHANGSAN.unionid, next_path="/").status_code == 302
    page = client.get("/")
    assert "你好, 张三" in page.text
    assert f"REMOTE_USER = {ZHANGSAN.unionid}" in page.text


def test_starlette_example(fake: FakeDingTalk) -> None:
    example = load("starlette_app")
    app = ASGIMiddleware(example.inner, make_settings(), transport=fake.transport())
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
        assert client.get("/health").text == "ok"
        assert client.get("/", headers=HTML).status_code == 302
        assert login(client, fake, ZHANGSAN.unionid, next_path="/").status_code == 302
        page = client.get("/")
        assert "你好, 张三" in page.text
        assert ZHANGSAN.unionid in page.text
