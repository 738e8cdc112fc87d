"""Several processes behave as one: two hub instances and two instances of a site, each a
separate uvicorn process, sharing one real Redis. A login is split across all of them, as
a load balancer without sticky sessions would split it."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import httpx
import pytest

from dingmw.testing import ZHANGSAN, FakeDingTalk

from .processes import stop_process, wait_answering
from .redis_server import RedisServer, free_port
from .support import HTML, SECRET_KEY

ROOT = Path(__file__).resolve().parent.parent
SITE_SECRET = "site-secret-0123456789abcdef"
START_TIMEOUT = 30.0

pytestmark = pytest.mark.redis


class Process:
    """One server process on a free loopback port."""

    def __init__(self, args: list[str], env: dict[str, str], port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            args,
            env={**os.environ, **env},
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def wait_ready(self, path: str) -> None:
        wait_answering(self.url + path, self.proc, START_TIMEOUT, self.errors)

    def errors(self) -> str:
        """What the process wrote to stderr, once it has exited (before, reading would block)."""
        if self.proc.poll() is None or self.proc.stderr is None:
            return "(still running)"
        return self.proc.stderr.read().decode()

    def stop(self) -> None:
        stop_process(self.proc, 10)
        if self.proc.stderr is not None:
            self.proc.stderr.close()


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with RedisServer() as server:
        yield server.url


@pytest.fixture(scope="module")
def fake_url() -> Iterator[tuple[str, FakeDingTalk]]:
    from .servers import serve_asgi

    fake = FakeDingTalk()
    with serve_asgi(fake.asgi_app) as url:
        yield url, fake


def common_env(fake: str, redis: str) -> dict[str, str]:
    return {
        "DINGMW_SECRET_KEY": SECRET_KEY,
        "DINGMW_STORE_URL": redis,
        "DINGMW_OAPI_URL": fake,
        "DINGMW_API_URL": fake,
        "DINGMW_LOGIN_URL": fake,
        "DINGMW_LOGIN_SCRIPT_URL": f"{fake}/h5-dingtalk-login/ddlogin.js",
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture(scope="module")
def cluster(redis_url: str, fake_url: tuple[str, FakeDingTalk]) -> Iterator[dict[str, Any]]:
    from dingmw.testing import DEFAULT_APP_KEY, DEFAULT_APP_SECRET

    fake, _ = fake_url
    hub_ports = [free_port(), free_port()]
    site_ports = [free_port(), free_port()]
    callbacks = [f"http://127.0.0.1:{p}/dingtalk/callback" for p in site_ports]
    clients = [{"client_id": "site", "client_secret": SITE_SECRET, "redirect_urls": callbacks}]
    hub_env = {
        **common_env(fake, redis_url),
        "DINGMW_APP_KEY": DEFAULT_APP_KEY,
        "DINGMW_APP_SECRET": DEFAULT_APP_SECRET,
        "DINGMW_HUB_CLIENTS": json.dumps(clients),
        "DINGMW_COOKIE_NAME": "hub_session",
        "DINGMW_ENRICH": "detail",
    }
    processes = [
        Process([sys.executable, "-m", "dingmw", "hub", "--port", str(port)], hub_env, port)
        for port in hub_ports
    ]
    for hub_port, site_port in zip(hub_ports, site_ports, strict=True):
        site_env = {
            **common_env(fake, redis_url),
            "DINGMW_FLOW": "hub",
            "DINGMW_HUB_URL": f"http://127.0.0.1:{hub_port}",  # each site instance its own hub
            "DINGMW_APP_KEY": "site",
            "DINGMW_APP_SECRET": SITE_SECRET,
            "DINGMW_PUBLIC_PATHS": "/health",
            "DINGMW_COOKIE_NAME": "site_session",
        }
        command = [sys.executable, "-m", "uvicorn", "tests.instance_app:app"]
        processes.append(
            Process(
                [*command, "--port", str(site_port), "--log-level", "warning"], site_env, site_port
            )
        )
    try:
        for process in processes[:2]:
            process.wait_ready("/healthz")
        for process in processes[2:]:
            process.wait_ready("/health")
        yield {"hubs": processes[:2], "sites": processes[2:]}
    finally:
        for process in processes:
            process.stop()


def on(instance: Process, url: str) -> str:
    """The same URL, answered by another instance (what a load balancer does)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"127.0.0.1:{instance.port}"))


def test_login_split_across_two_hubs_and_two_sites(
    cluster: dict[str, Any], fake_url: tuple[str, FakeDingTalk]
) -> None:
    _, fake = fake_url
    hub1, hub2 = cluster["hubs"]
    site1, site2 = cluster["sites"]
    with httpx.Client(follow_redirects=False, headers=HTML) as browser:
        # The site's login starts on site 1, which sends the browser to hub 1...
        start = browser.get(site1.url + "/private")
        assert start.status_code == 302
        to_hub = browser.get(site1.url + start.headers["location"])
        assert to_hub.headers["location"].startswith(hub1.url + "/dingtalk/authorize?")
        # ...but hub 2 answers the authorize request and sends it to DingTalk's login page,
        login = browser.get(on(hub2, to_hub.headers["location"]))
        callback = fake.scan(login.headers["location"], ZHANGSAN.unionid)
        # DingTalk's redirect reaches hub 1, which mints the one-time code,
        back = browser.get(on(hub1, callback))
        assert back.status_code == 302, back.text
        site_callback = back.headers["location"]
        assert site_callback.startswith(site1.url + "/dingtalk/callback?")
        # and site 2 finishes: it redeems hub 1's code at hub 2 (its own DINGMW_HUB_URL).
        state_cookie = next(c for c in browser.cookies.jar if "_state_" in c.name)
        done = browser.get(on(site2, site_callback))
        assert done.status_code == 302, done.text
        assert done.headers["location"] == "/private"
        for site in (site1, site2):
            me = browser.get(site.url + "/private").json()
            assert me["unionid"] == ZHANGSAN.unionid
            assert me["userid"] == "zhangsan"
        # Replays are refused on any instance, even with the state cookie: the site's state...
        browser.cookies.set(state_cookie.name, state_cookie.value or "", path=state_cookie.path)
        replay = browser.get(on(site1, site_callback))
        assert replay.status_code == 400
        assert 'data-reason="state_used"' in replay.text
        # ...and the hub's code.
        code = parse_qs(urlsplit(site_callback).query)["code"][0]
        basic = base64.b64encode(f"site:{SITE_SECRET}".encode()).decode()
        reused = httpx.post(
            hub1.url + "/dingtalk/token",
            content=f"code={code}".encode(),
            headers={"authorization": f"Basic {basic}", "content-type": "text/plain"},
        )
        assert reused.status_code == 400
        assert reused.json()["error"] == "invalid_grant"
    # One DingTalk login (the token exchange ran once), one app token for both hubs.
    assert fake.calls["/v1.0/oauth2/userAccessToken"] == 1


def test_hub_token_minted_by_one_instance_works_on_the_other(
    cluster: dict[str, Any], fake_url: tuple[str, FakeDingTalk]
) -> None:
    _, fake = fake_url
    hub1, hub2 = cluster["hubs"]
    site1, _ = cluster["sites"]
    callback_url = f"{site1.url}/dingtalk/callback"
    with httpx.Client(follow_redirects=False, headers=HTML) as browser:
        params = {"redirect_url": callback_url, "client_id": "site", "state": "abc"}
        login = browser.get(hub1.url + "/dingtalk/authorize", params=params)
        back = browser.get(on(hub1, fake.scan(login.headers["location"], ZHANGSAN.unionid)))
    code = parse_qs(urlsplit(back.headers["location"]).query)["code"][0]
    basic = base64.b64encode(f"site:{SITE_SECRET}".encode()).decode()
    tokens = httpx.post(
        hub2.url + "/dingtalk/token",
        content=f"code={code}&state=abc".encode(),
        headers={"authorization": f"Basic {basic}", "content-type": "text/plain"},
    ).json()
    info = httpx.get(
        hub1.url + "/dingtalk/userinfo", headers={"authorization": tokens["access_token"]}
    )
    assert info.status_code == 200
    assert info.json()["unionid"] == ZHANGSAN.unionid
    rotated = httpx.post(
        hub1.url + "/dingtalk/token",
        content=f"grant_type=refresh_token&refresh_token={tokens['refresh_token']}".encode(),
        headers={"authorization": f"Basic {basic}", "content-type": "text/plain"},
    )
    assert rotated.status_code == 200
    reuse = httpx.post(
        hub2.url + "/dingtalk/token",
        content=f"grant_type=refresh_token&refresh_token={tokens['refresh_token']}".encode(),
        headers={"authorization": f"Basic {basic}", "content-type": "text/plain"},
    )
    assert reuse.status_code == 400


# Logout and "log out everywhere" across instances and sites -----------------------------

PORTAL = "portal.example"
RECHECK_WAIT = 15.0


def portal_settings(app_key: str) -> dict[str, str]:
    return {
        "DINGMW_APP_KEY": app_key,
        "DINGMW_APP_SECRET": SITE_SECRET,
        "DINGMW_SESSION_AUDIENCE": PORTAL,
        "DINGMW_SESSION_RECHECK": "1",
        "DINGMW_PUBLIC_PATHS": "/health",
    }


@pytest.fixture(scope="module")
def portal(redis_url: str, fake_url: tuple[str, FakeDingTalk]) -> Iterator[dict[str, Any]]:
    """Site A on two instances and site B on one, sharing Redis and one audience."""
    fake, _ = fake_url
    command = [sys.executable, "-m", "uvicorn", "tests.instance_app:app", "--log-level", "warning"]
    processes = []
    for app_key in ("site-a", "site-a", "site-b"):
        port = free_port()
        env = {**common_env(fake, redis_url), **portal_settings(app_key)}
        processes.append(Process([*command, "--port", str(port)], env, port))
    try:
        for process in processes:
            process.wait_ready("/health")
        yield {"a1": processes[0], "a2": processes[1], "b": processes[2]}
    finally:
        for process in processes:
            process.stop()


def portal_cookie(app_key: str, unionid: str) -> str:
    """A session as site `app_key` issues it at login (its settings, keys and audience)."""
    from dingmw import Identity, Settings, WSGIMiddleware

    settings = Settings.from_env(
        {"DINGMW_SECRET_KEY": SECRET_KEY, "DINGMW_APP_SECRET": SITE_SECRET}
        | portal_settings(app_key)
    )
    sessions = WSGIMiddleware(lambda environ, start: [], settings).core.sessions
    identity = Identity(unionid=unionid, name=unionid, flow="oauth2")
    return sessions.issue(identity, secure=False).split(";", 1)[0]


def status(instance: Process, cookie: str) -> int:
    headers = {"cookie": cookie, "accept": "application/json"}
    return httpx.get(instance.url + "/private", headers=headers).status_code


def refused_soon(instance: Process, cookie: str) -> bool:
    """Whether `instance` refuses `cookie` within its re-check window (polled, not slept)."""
    deadline = time.monotonic() + RECHECK_WAIT
    while time.monotonic() < deadline:
        if status(instance, cookie) == 401:
            return True
        time.sleep(0.1)  # the other instance re-checks at most once a second
    return False


def logout(instance: Process, cookie: str, query: str = "") -> httpx.Response:
    return httpx.post(
        f"{instance.url}/dingtalk/logout{query}",
        headers={"cookie": cookie, "origin": instance.url},
    )


def test_logout_on_one_instance_logs_out_on_the_other(portal: dict[str, Any]) -> None:
    a1, a2 = portal["a1"], portal["a2"]
    cookie = portal_cookie("site-a", "u-logout-one")
    assert status(a1, cookie) == 200
    assert status(a2, cookie) == 200  # cached there now
    response = logout(a1, cookie)
    assert response.status_code == 302
    assert status(a1, cookie) == 401  # the same cookie, replayed: at once here
    assert refused_soon(a2, cookie)  # and within the re-check window there


def test_logout_everywhere_reaches_every_instance_and_site(portal: dict[str, Any]) -> None:
    a1, a2, b = portal["a1"], portal["a2"], portal["b"]
    laptop = portal_cookie("site-a", "u-everywhere")
    phone = portal_cookie("site-a", "u-everywhere")
    at_b = portal_cookie("site-b", "u-everywhere")
    someone_else = portal_cookie("site-a", "u-someone-else")
    for instance in (a1, a2, b):
        for cookie in (laptop, phone, at_b, someone_else):
            assert status(instance, cookie) == 200  # one audience: every site accepts them
    assert logout(b, at_b, "?everywhere=1").status_code == 302
    for instance in (a1, a2, b):
        for cookie in (laptop, phone, at_b):
            assert refused_soon(instance, cookie), f"{instance.url} still accepts a session"
        assert status(instance, someone_else) == 200
    fresh = portal_cookie("site-a", "u-everywhere")  # a new login afterwards works
    assert status(a2, fresh) == 200


def test_an_admin_tool_logs_a_person_out_everywhere(portal: dict[str, Any], redis_url: str) -> None:
    from dingmw import Settings
    from dingmw.revoke import revoke_everywhere

    a1, b = portal["a1"], portal["b"]
    cookies = [portal_cookie("site-a", "u-admin-tool"), portal_cookie("site-b", "u-admin-tool")]
    for cookie in cookies:
        assert status(a1, cookie) == 200
        assert status(b, cookie) == 200
    settings = Settings.from_env(
        {"DINGMW_SECRET_KEY": SECRET_KEY, "DINGMW_APP_SECRET": SITE_SECRET}
        | portal_settings("admin-tool")
        | {"DINGMW_STORE_URL": redis_url}
    )
    revoke_everywhere("u-admin-tool", settings)
    for cookie in cookies:
        assert refused_soon(a1, cookie)
        assert refused_soon(b, cookie)
