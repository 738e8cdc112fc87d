"""`dingmw.testing.login_as`: one line logs a person in on any test client, and the pytest
plugin a user enables in their own conftest."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from flask import Flask

from dingmw import ASGIMiddleware, Identity, Settings, WSGIMiddleware
from dingmw.fastapi import DingTalk as FastAPIDingTalk
from dingmw.flask import DingTalk as FlaskDingTalk
from dingmw.testing import DEFAULT_CORP_ID, LISI, ZHANGSAN, identity_of, login_as

from .support import TestClient, asgi_app, make_settings, wsgi_app

JSON = {"accept": "application/json"}


def test_a_fake_person_is_who_an_enriched_login_gives() -> None:
    identity = identity_of(ZHANGSAN)
    assert identity.unionid == ZHANGSAN.unionid
    assert identity.userid == "zhangsan"
    assert identity.name == "张三"
    assert identity.corp_id == DEFAULT_CORP_ID
    assert 100 in identity.dept_ids


def test_with_settings_it_returns_a_cookie_for_any_client() -> None:
    settings = make_settings()
    cookie = login_as(settings, ZHANGSAN)
    assert cookie.name == settings.cookie_name
    app = WSGIMiddleware(wsgi_app().wsgi_app, settings)
    client = httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://testserver")
    me = client.get("/dingtalk/me", headers={"cookie": str(cookie), **JSON})
    assert me.json()["unionid"] == ZHANGSAN.unionid


def test_flask_test_client() -> None:
    app = Flask("user_app")

    @app.route("/")
    def home() -> str:
        return "home"

    FlaskDingTalk(app, settings=make_settings())
    client = app.test_client()
    assert client.get("/", headers=JSON).status_code == 401
    login_as(client, ZHANGSAN)
    assert client.get("/").text == "home"
    me = client.get("/dingtalk/me").get_json()
    assert me["userid"] == "zhangsan"


def test_flask_wrapped_by_hand_under_httpx() -> None:
    app = wsgi_app()
    app.wsgi_app = WSGIMiddleware(app.wsgi_app, make_settings())  # type: ignore[method-assign]
    client = httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://testserver")
    login_as(client, LISI)
    assert client.get("/private").json()["userid"] == "lisi"


def test_starlette_test_client() -> None:
    client = TestClient(ASGIMiddleware(asgi_app(), make_settings()), base_url="http://testserver")
    login_as(client, ZHANGSAN)
    assert client.get("/private").json()["display"] == "张三"


def test_fastapi_with_add_middleware_before_any_request() -> None:
    app = FastAPI()

    @app.get("/")
    async def home() -> str:
        return "home"

    FastAPIDingTalk(app, make_settings())
    client = TestClient(app, base_url="http://testserver")
    login_as(client, ZHANGSAN)  # Starlette builds its middleware on the first call; not yet here
    assert client.get("/").json() == "home"


def test_an_identity_of_ones_own() -> None:
    client = TestClient(ASGIMiddleware(asgi_app(), make_settings()), base_url="http://testserver")
    login_as(client, Identity(unionid="u-own", userid="own", name="Own"))
    assert client.get("/private").json()["userid"] == "own"


def test_the_session_follows_the_settings_signing_key() -> None:
    cookie = login_as(make_settings(), ZHANGSAN)
    other = Settings(app_key="k", app_secret="s", secret_keys=("another-key-" + "x" * 30,))
    app = WSGIMiddleware(wsgi_app().wsgi_app, other)
    client = httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://testserver")
    assert client.get("/private", headers={"cookie": str(cookie), **JSON}).status_code == 401


def test_something_without_dingmw_is_refused_clearly() -> None:
    with pytest.raises(TypeError, match="cannot find dingmw"):
        login_as(Flask("bare").test_client(), ZHANGSAN)


USER_CONFTEST = 'pytest_plugins = ["dingmw.testing.pytest_plugin"]\n'
USER_TESTS = textwrap.dedent(
    """
    from flask import Flask

    from dingmw.flask import DingTalk, current_identity
    from dingmw.testing import ZHANGSAN

    dingtalk = DingTalk()


    def create_app():
        app = Flask(__name__)

        @app.route("/")
        def home():
            return "hello " + current_identity().display_name

        dingtalk.init_app(app)
        return app


    def test_home_with_the_env(dingmw_env, login_as):
        client = create_app().test_client()
        login_as(client, ZHANGSAN)
        assert client.get("/").text == "hello 张三"


    def test_home_with_settings(dingmw_settings, fake_dingtalk, login_as):
        app = Flask(__name__)
        app.route("/")(lambda: "hi " + current_identity().userid)
        DingTalk(app, settings=dingmw_settings, transport=fake_dingtalk.transport())
        client = app.test_client()
        assert client.get("/", headers={"accept": "application/json"}).status_code == 401
        login_as(client, ZHANGSAN)
        assert client.get("/").text == "hi zhangsan"
    """
)


def test_the_pytest_plugin_in_a_users_project(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(USER_CONFTEST, encoding="utf-8")
    (tmp_path / "test_user_app.py").write_text(USER_TESTS, encoding="utf-8")
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "2 passed" in out.stdout
