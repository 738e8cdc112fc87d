"""Seed 002 exactly, against real servers on loopback: a site written against the seed (plain
WSGI and httpx, no dingmw), the hub, and the fake DingTalk, each on its own port. The person's
browser is a client that follows redirects and runs no JavaScript (httpx, then curl): on
DingTalk's own login page it submits the form as a person would."""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import subprocess
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx
import pytest

from dingmw.config import HubClient
from dingmw.hub import create_app
from dingmw.testing import ZHANGSAN

from .conftest import FakeServer
from .servers import free_socket, serve_asgi, serve_wsgi
from .support import hub_settings

CLIENT_ID = "seed-site"
CLIENT_SECRET = "seed-site-secret-0123456789"

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def seed_site(hub: str, base: str) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    """A site as seed 002 describes one: /login → the hub's /authorize; /callback → /token
    (Basic, text/plain) → /userinfo (the bare token); it answers the userinfo JSON."""
    callback = f"{base}/callback"

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ["PATH_INFO"]
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        if path == "/login":
            # Standard Base64, `+`, `/` and `=` in it: the seed's plain-string token body
            # carries it as is.
            state = base64.b64encode(b"\xfb\xff" + secrets.token_bytes(14)).decode()
            params = {"redirect_url": callback, "client_id": CLIENT_ID, "state": state}
            start_response(
                "302 Found",
                [
                    ("Location", f"{hub}/dingtalk/authorize?{urlencode(params)}"),
                    ("Set-Cookie", f"seed_state={state}; Path=/; HttpOnly"),
                ],
            )
            return [b""]
        if path == "/callback":
            cookie = environ.get("HTTP_COOKIE", "")
            if f"seed_state={query.get('state')}" not in cookie:
                start_response("400 Bad Request", [("Content-Type", "text/plain")])
                return [b"bad state"]
            basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
            token = httpx.post(
                f"{hub}/dingtalk/token",
                content=f"code={query['code']}&state={query['state']}".encode(),
                headers={"Authorization": f"Basic {basic}", "Content-Type": "text/plain"},
            ).json()
            info = httpx.get(
                f"{hub}/dingtalk/userinfo", headers={"Authorization": token["access_token"]}
            )
            start_response("200 OK", [("Content-Type", "application/json")])
            return [info.content]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]

    return app


@dataclass(frozen=True)
class World:
    hub: str
    site: str


@pytest.fixture
def world(fake_server: FakeServer) -> Iterator[World]:
    sock = free_socket()
    site = f"http://127.0.0.1:{sock.getsockname()[1]}"
    fake = fake_server.url
    hub_app = create_app(
        hub_settings(
            fake,
            hub_clients=(
                HubClient(
                    client_id=CLIENT_ID,
                    client_secret=CLIENT_SECRET,
                    redirect_urls=(f"{site}/callback",),
                ),
            ),
        )
    )
    with contextlib.ExitStack() as stack:
        stack.callback(sock.close)
        hub = stack.enter_context(serve_asgi(hub_app))
        stack.enter_context(serve_wsgi(seed_site(hub, site), sock=sock))
        yield World(hub=hub, site=site)


class _Form(HTMLParser):
    """The first form of a page: its action, hidden fields, and the person's submit button."""

    def __init__(self, unionid: str) -> None:
        super().__init__()
        self.unionid = unionid
        self.action: str | None = None
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and self.action is None:
            self.action = a.get("action", "")
            return
        hidden = tag == "input" and a.get("type") == "hidden"
        pressed = tag == "button" and a.get("data-unionid") == self.unionid
        if (hidden or pressed) and "name" in a:
            self.fields[a["name"]] = a.get("value", "")


def person_submits(page_url: str, html: str, unionid: str) -> tuple[str, dict[str, str]]:
    """What pressing the button for `unionid` on DingTalk's login page submits: (URL, form)."""
    form = _Form(unionid)
    form.feed(html)
    assert form.action is not None, html[:300]
    assert form.fields.get("unionid") == unionid, html[:300]
    return urljoin(page_url, form.action), form.fields


def test_seed_002_with_a_client_that_runs_no_javascript(
    world: World, fake_server: FakeServer
) -> None:
    with httpx.Client(follow_redirects=True, timeout=10) as browser:
        page = browser.get(world.site + "/login")
        # Straight from the hub to DingTalk's own login page, no page of the hub's in between.
        hops = [str(r.url) for r in page.history]
        assert hops[0] == world.site + "/login"
        assert hops[1].startswith(world.hub + "/dingtalk/authorize?")
        assert len(hops) == 2
        assert str(page.url).startswith(fake_server.url + "/oauth2/auth?")
        action, form = person_submits(str(page.url), page.text, ZHANGSAN.unionid)
        done = browser.post(action, data=form)
        assert done.status_code == 200, done.text
        # DingTalk → the hub's callback with forward_url, authCode and state → the site.
        hub_callback = next(
            str(r.url) for r in done.history if str(r.url).startswith(world.hub + "/dingtalk/")
        )
        params = parse_qs(urlsplit(hub_callback).query)
        assert urlsplit(hub_callback).path == "/dingtalk/callback"
        assert params["forward_url"] == [world.site + "/callback"]
        assert set(params) == {"forward_url", "authCode", "state"}
        assert str(done.url).startswith(world.site + "/callback?code=")
        info = done.json()
        assert info["username"] == "zhangsan"
        assert info["email"] == ZHANGSAN.org_email
        # Single sign-on: the next login at the site goes through the hub's session alone.
        again = browser.get(world.site + "/login")
        assert again.status_code == 200
        assert again.json()["username"] == "zhangsan"
        assert not any(str(r.url).startswith(fake_server.url) for r in again.history)


def curl(jar: Path, *args: str) -> str:
    result = subprocess.run(
        ["curl", "-sS", "-L", "--max-redirs", "10", "-b", str(jar), "-c", str(jar), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return result.stdout


def test_seed_002_with_curl(world: World, tmp_path: Path) -> None:
    jar = tmp_path / "cookies.txt"
    page = curl(jar, "-w", "\n%{url_effective}", world.site + "/login")
    html, _, page_url = page.rpartition("\n")
    action, form = person_submits(page_url, html, ZHANGSAN.unionid)
    fields = [
        arg for name, value in form.items() for arg in ("--data-urlencode", f"{name}={value}")
    ]
    info = json.loads(curl(jar, *fields, action))  # curl turns the POST into a GET after a 302
    assert info["username"] == "zhangsan"
    assert info["unionid"] == ZHANGSAN.unionid
