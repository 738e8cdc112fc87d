"""`dingmw.django`, logged in through the example site (examples/django_site): Django users
from DingTalk identities, staff by department, the admin, Django logout when the DingTalk
session ends, `force_login` untouched; Django's test client, and real WSGI and ASGI servers."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "django_site"
sys.path.insert(0, str(EXAMPLE))
os.environ["DJANGO_SETTINGS_MODULE"] = "mysite.settings"
os.environ["EXAMPLE_DJANGO_DB"] = str(
    Path(tempfile.mkdtemp(prefix="dingmw-django-")) / "db.sqlite3"
)

import django  # noqa: E402  # configured just above

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.sessions.models import Session  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.test import Client  # noqa: E402

from dingmw import Settings  # noqa: E402
from dingmw.clients import sync_clients  # noqa: E402
from dingmw.django.middleware import SESSION_KEY  # noqa: E402
from dingmw.testing import DEFAULT_APP_KEY, DEFAULT_APP_SECRET, LISI, ZHANGSAN, login_as  # noqa: E402

from .conftest import FakeServer  # noqa: E402
from .servers import serve_asgi, serve_wsgi  # noqa: E402
from .support import HTML, SECRET_KEY, page_config  # noqa: E402

User: Any = get_user_model()


@pytest.fixture(scope="module", autouse=True)
def database() -> None:
    call_command("migrate", verbosity=0, interactive=False)


@pytest.fixture(autouse=True)
def fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("DINGMW_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("DINGMW_APP_KEY", DEFAULT_APP_KEY)
    monkeypatch.setenv("DINGMW_APP_SECRET", DEFAULT_APP_SECRET)
    monkeypatch.setenv("DINGMW_SECRET_KEY", SECRET_KEY)
    User.objects.all().delete()
    Session.objects.all().delete()


def test_a_browser_without_a_session_is_sent_to_dingtalk() -> None:
    response = Client().get("/", headers={"accept": "text/html"})
    assert response.status_code == 302
    assert response["location"] == "/dingtalk/login?next=/"
    assert Client().get("/health").content == b"ok -"


def test_a_dingtalk_person_becomes_a_django_user_and_staff_by_department() -> None:
    client = Client()
    login_as(client, ZHANGSAN)
    page = client.get("/")
    assert page.status_code == 200
    assert "你好, 张三" in page.content.decode()
    user = User.objects.get(username="zhangsan")  # the userid, the unionid when unknown
    assert user.first_name == "张三"
    assert user.email == ZHANGSAN.org_email
    assert user.is_staff
    assert not user.is_superuser
    assert not user.has_usable_password()
    assert client.session[SESSION_KEY] == ZHANGSAN.unionid
    assert client.get("/admin/").status_code == 200  # a staff person reaches the admin


def test_a_person_who_is_not_staff_sees_why_on_the_admin_login_page() -> None:
    client = Client()
    login_as(client, LISI)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["location"].startswith("/admin/login/")
    page = client.get(response["location"]).content.decode()
    assert 'id="dingmw-not-staff"' in page
    assert "Li Si" in page or "lisi" in page
    assert 'href="/dingtalk/login?next=/admin/"' in page
    assert not User.objects.get(username="lisi").is_staff


def test_the_admin_login_page_offers_dingtalk_and_keeps_the_password_form() -> None:
    User.objects.create_user("break-glass", password="pw-0123456789", is_staff=True)
    client = Client()
    page = client.get("/admin/login/?next=/admin/").content.decode()
    assert 'id="dingmw-admin-login"' in page
    assert 'href="/dingtalk/login?next=/admin/"' in page
    assert 'id="dingmw-not-staff"' not in page
    form = {"username": "break-glass", "password": "pw-0123456789", "next": "/admin/"}
    assert client.post("/admin/login/?next=/admin/", form)["location"] == "/admin/"
    assert client.get("/admin/").status_code == 200  # a password login passes too


def test_dingtalk_logout_ends_the_django_login() -> None:
    client = Client()
    login_as(client, ZHANGSAN)
    assert client.get("/health").content == b"ok zhangsan"
    assert client.get("/dingtalk/logout").status_code == 200  # a page asking to confirm
    assert client.get("/health").content == b"ok zhangsan"  # nothing ended yet
    response = client.post("/dingtalk/logout", headers={"sec-fetch-site": "same-origin"})
    assert response.status_code == 302
    assert "_auth_user_id" not in client.session
    assert client.get("/health").content == b"ok -"
    assert client.get("/", headers={"accept": "text/html"}).status_code == 302


def test_the_end_of_the_dingtalk_session_ends_the_django_login() -> None:
    client = Client()
    cookie = login_as(client, ZHANGSAN)
    assert client.get("/health").content == b"ok zhangsan"
    del client.cookies[cookie.name]  # expired, or cleared by another tab's logout
    assert client.get("/health").content == b"ok -"
    assert "_auth_user_id" not in client.session
    assert client.get("/", headers={"accept": "text/html"}).status_code == 302


def test_force_login_keeps_working() -> None:
    user = User.objects.create_user("tester", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(user)
    assert client.get("/health").content == b"ok tester"
    assert client.get("/").status_code == 200  # a Django login passes dingmw's gate
    assert client.get("/admin/").status_code == 200
    assert client.get("/health").content == b"ok tester"  # not undone by the middleware


def test_unionid_as_username() -> None:
    from django.test import override_settings

    with override_settings(DINGMW_DJANGO={"USERNAME": "unionid"}):
        client = Client()
        login_as(client, ZHANGSAN)
        assert client.get("/health").content == f"ok {ZHANGSAN.unionid}".encode()
        assert not User.objects.get(username=ZHANGSAN.unionid).is_staff  # no lists: untouched


# Real servers: the whole login through the fake DingTalk ---------------------------------


def _log_in_through_the_fake(client: httpx.Client, fake_server: FakeServer) -> None:
    assert client.get("/admin/", headers=HTML).headers["location"] == (
        "/dingtalk/login?next=/admin/"
    )
    config = page_config(client.get("/dingtalk/login?next=/admin/", headers=HTML))
    callback = client.get(fake_server.fake.scan(config["authorize_url"], ZHANGSAN.unionid))
    assert callback.status_code == 302, callback.text
    assert callback.headers["location"] == "/admin/"


def _point_at(fake_server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DINGMW_OAPI_URL", "DINGMW_API_URL", "DINGMW_LOGIN_URL"):
        monkeypatch.setenv(name, fake_server.url)
    monkeypatch.setenv("DINGMW_LOGIN_SCRIPT_URL", f"{fake_server.url}/h5-dingtalk-login/ddlogin.js")
    monkeypatch.setenv("DINGMW_ENRICH", "detail")


@pytest.mark.parametrize("server", ["wsgi", "asgi"])
def test_a_real_server_logs_a_staff_person_in_to_the_admin(
    server: str, fake_server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _point_at(fake_server, monkeypatch)
    if server == "wsgi":
        serving = serve_wsgi(get_wsgi_application())
    else:
        serving = serve_asgi(get_asgi_application())
    with serving as base, httpx.Client(base_url=base, timeout=30) as client:
        _log_in_through_the_fake(client, fake_server)
        admin = client.get("/admin/")
        assert admin.status_code == 200
        assert "Site administration" in admin.text
        assert User.objects.get(username="zhangsan").is_staff
        logout = client.post("/dingtalk/logout", headers={"sec-fetch-site": "same-origin"})
        assert logout.status_code == 302
        assert client.get("/health").text == "ok -"
    sync_clients(timeout=Settings.from_env().http_timeout).close()  # the process's pool


FORGED = {
    "X-DingTalk-UnionId": "u-admin",
    "Remote-User": "admin",
    "X-Forwarded-User": "admin",
    "X-Forwarded-Email": "admin@corp.example",
}


def _as_after_the_auth_middleware(request: Any) -> None:
    from django.contrib.auth.models import AnonymousUser
    from django.contrib.sessions.backends.db import SessionStore

    request.session = SessionStore()
    request.user = AnonymousUser()


def _seen_by_the_view(request: Any) -> dict[str, Any]:
    scope = getattr(request, "scope", None)
    return {
        "headers": {k.lower() for k in request.headers},
        "meta": {k for k in request.META if k.startswith("HTTP_")},
        "scope": {name.decode().lower() for name, _ in scope["headers"]} if scope else set(),
    }


def _no_identity_headers(seen: dict[str, Any]) -> None:
    forged = {name.lower() for name in FORGED}
    assert not seen["headers"] & forged, seen["headers"]
    assert not seen["meta"] & {"HTTP_" + n.upper().replace("-", "_") for n in FORGED}
    assert not seen["scope"] & forged, seen["scope"]
    assert "user-agent" in seen["headers"]  # the others are kept


@pytest.mark.parametrize("session", ["none", "junk"])
def test_forged_identity_headers_never_reach_the_view_under_wsgi(session: str) -> None:
    """Even when `request.headers` was built before dingmw ran (it is built once and kept)."""
    from django.http import HttpResponse
    from django.test import RequestFactory

    from dingmw.django.middleware import DingTalkMiddleware

    seen: dict[str, Any] = {}

    def view(request: Any) -> HttpResponse:
        seen.update(_seen_by_the_view(request))
        return HttpResponse(b"ok")

    cookie = {"Cookie": "dingmw_session=junk"} if session == "junk" else {}
    request = RequestFactory().get("/health", headers={**FORGED, "User-Agent": "test", **cookie})
    assert "Remote-User" in request.headers  # read before dingmw, as a middleware might
    _as_after_the_auth_middleware(request)
    response = DingTalkMiddleware(view)(request)
    assert response.status_code == 200
    _no_identity_headers(seen)


async def test_forged_identity_headers_never_reach_the_view_under_asgi() -> None:
    from django.http import HttpResponse
    from django.test import AsyncRequestFactory

    from dingmw.django.middleware import DingTalkMiddleware

    seen: dict[str, Any] = {}

    async def view(request: Any) -> HttpResponse:
        seen.update(_seen_by_the_view(request))
        return HttpResponse(b"ok")

    request = AsyncRequestFactory().get(
        "/health", headers={**FORGED, "User-Agent": "test", "Cookie": "dingmw_session=junk"}
    )
    assert "Remote-User" in request.headers
    _as_after_the_auth_middleware(request)
    response = await DingTalkMiddleware(view)(request)
    assert response.status_code == 200
    _no_identity_headers(seen)


def test_remote_user_middleware_before_dingmw_is_refused_at_start() -> None:
    """Before dingmw, it would log in whoever a client's own `Remote-User` names (under ASGI
    Django reads that header): a superuser, say. After dingmw it never sees one."""
    from django.core.exceptions import ImproperlyConfigured
    from django.test import override_settings

    from dingmw.django.middleware import DingTalkMiddleware

    def view(request: Any) -> Any:
        raise AssertionError("not called")

    base = [
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
    ]
    ours = "dingmw.django.middleware.DingTalkMiddleware"
    for remote in (
        "django.contrib.auth.middleware.RemoteUserMiddleware",
        "django.contrib.auth.middleware.PersistentRemoteUserMiddleware",
    ):
        with override_settings(MIDDLEWARE=[*base, remote, ours]):
            with pytest.raises(ImproperlyConfigured, match="before dingmw") as info:
                DingTalkMiddleware(view)
            assert remote in str(info.value)
        with override_settings(MIDDLEWARE=[*base, ours, remote]):
            DingTalkMiddleware(view)  # after dingmw: accepted


def test_a_bad_forwarded_prefix_is_refused_for_a_logged_in_person(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DINGMW_TRUST_PROXY", "1")
    client = Client()
    login_as(client, ZHANGSAN)
    assert client.get("/", headers={"x-forwarded-prefix": "/app"}).status_code == 200
    for _ in range(2):
        refused = client.get("/", headers={"x-forwarded-prefix": "/a/../b"})
        assert refused.status_code == 400
        assert b"bad_forwarded" in refused.content
