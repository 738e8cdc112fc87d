"""The hub's OpenID Connect face with clients no one here wrote, against real servers on
loopback (uvicorn for the hub and the fake DingTalk, werkzeug for the relying parties):

* Authlib's Flask client, configured only with the discovery URL (and its client id and
  secret): login with PKCE, the ID token validated against the JWKS, userinfo, refresh, and
  RP-initiated logout with `logout_redirect` / `validate_logout_response`;
* requests-oauthlib's `OAuth2Session` with PKCE (S256), endpoints taken from discovery;
* the person's browser is httpx following redirects and running no JavaScript: on DingTalk's
  own login page it submits the form, as a person would.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from authlib.integrations.flask_client import OAuth
from flask import Flask, jsonify, request, session, url_for
from requests_oauthlib import OAuth2Session

from dingmw.hub import HubClient, HubSettings, create_app
from dingmw.testing import ZHANGSAN

from .conftest import ContextFactory, FakeServer
from .hub_keys import write_keys
from .servers import free_socket, serve_asgi, serve_wsgi
from .support import hub_settings
from .test_browser_hub import sign_in_at_dingtalk
from .test_hub_seed import person_submits

AUTHLIB_SECRET = "authlib-secret-0123456789"
OAUTHLIB_SECRET = "oauthlib-secret-0123456789"


@dataclass(frozen=True)
class World:
    hub: str
    authlib_rp: str
    oauthlib_rp: str


def authlib_rp(discovery: str) -> Flask:
    """A relying party as Authlib's documentation writes one."""
    app = Flask("authlib_rp")
    app.secret_key = secrets.token_urlsafe(32)
    oauth = OAuth(app)
    oauth.register(
        "hub",
        client_id="authlib-rp",
        client_secret=AUTHLIB_SECRET,
        server_metadata_url=discovery,
        client_kwargs={"scope": "openid profile email", "code_challenge_method": "S256"},
    )
    hub: Any = oauth.hub

    @app.route("/login")
    def login() -> Any:
        return hub.authorize_redirect(url_for("callback", _external=True))

    @app.route("/callback")
    def callback() -> Any:
        token = hub.authorize_access_token()  # checks state, PKCE, and the ID token (JWKS)
        session["token"] = dict(token)
        return jsonify(
            id_token=dict(token["userinfo"]),
            userinfo=dict(hub.userinfo(token=token)),
            scope=token["scope"],
        )

    @app.route("/refresh")
    def refresh() -> Any:
        old = session["token"]
        new = hub.fetch_access_token(grant_type="refresh_token", refresh_token=old["refresh_token"])
        claims = hub.parse_id_token(new, nonce=None)
        session["token"] = dict(new)
        return jsonify(rotated=new["refresh_token"] != old["refresh_token"], sub=claims["sub"])

    @app.route("/logout")
    def logout() -> Any:
        return hub.logout_redirect(
            post_logout_redirect_uri=url_for("logged_out", _external=True),
            id_token_hint=session["token"]["id_token"],
        )

    @app.route("/logout-without-hint")
    def logout_without_hint() -> Any:
        return hub.logout_redirect(
            post_logout_redirect_uri=url_for("logged_out", _external=True), client_id="authlib-rp"
        )

    @app.route("/account")
    def account() -> Any:
        return '<!doctype html><a id="logout" href="/logout-without-hint">Log out</a>'

    @app.route("/logged-out")
    def logged_out() -> Any:
        hub.validate_logout_response()  # the state the logout went out with
        return jsonify(logged_out=True)

    @app.route("/userinfo")
    def userinfo() -> Any:
        endpoint = hub.load_server_metadata()["userinfo_endpoint"]
        response = hub.get(endpoint, token=session["token"])
        return jsonify(status=response.status_code)

    return app


def echo() -> Flask:
    """requests-oauthlib's redirect URI: hands the query back (the client reads it)."""
    app = Flask("echo")

    @app.route("/callback")
    def callback() -> Any:
        return jsonify(url=request.url)

    return app


@pytest.fixture
def world(
    fake_server: FakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[World]:
    # Loopback is plain http; both libraries refuse it unless told this is a test.
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    keys = write_keys(tmp_path)
    socks = {name: free_socket() for name in ("hub", "authlib", "oauthlib")}
    url = {name: f"http://127.0.0.1:{s.getsockname()[1]}" for name, s in socks.items()}
    fake = fake_server.url
    hub_app = create_app(
        hub_settings(fake, base_url=url["hub"]),  # the issuer
        HubSettings(
            clients=(
                HubClient(
                    client_id="authlib-rp",
                    client_secret=AUTHLIB_SECRET,
                    redirect_urls=(f"{url['authlib']}/callback",),
                    post_logout_redirect_urls=(f"{url['authlib']}/logged-out",),
                ),
                HubClient(
                    client_id="oauthlib-rp",
                    client_secret=OAUTHLIB_SECRET,
                    redirect_urls=(f"{url['oauthlib']}/callback",),
                ),
            ),
            oidc_key_files=(keys["ec"], keys["rsa"]),
        ),
    )
    with contextlib.ExitStack() as stack:
        for sock in socks.values():
            stack.callback(sock.close)
        stack.enter_context(serve_asgi(hub_app, sock=socks["hub"]))
        discovery = f"{url['hub']}/.well-known/openid-configuration"
        stack.enter_context(serve_wsgi(authlib_rp(discovery), sock=socks["authlib"]))
        stack.enter_context(serve_wsgi(echo(), sock=socks["oauthlib"]))
        yield World(hub=url["hub"], authlib_rp=url["authlib"], oauthlib_rp=url["oauthlib"])


def sign_in(browser: httpx.Client, start: str) -> httpx.Response:
    """Follow `start` to DingTalk's login page, sign in there as Zhang San, follow back."""
    page = browser.get(start)
    assert "/oauth2/auth" in str(page.url), page.text[:300]
    action, form = person_submits(str(page.url), page.text, ZHANGSAN.unionid)
    return browser.post(action, data=form)


def test_authlib_with_only_the_discovery_url(world: World) -> None:
    with httpx.Client(follow_redirects=True, timeout=10) as browser:
        done = sign_in(browser, world.authlib_rp + "/login")
        assert done.status_code == 200, done.text
        body = done.json()
        assert body["id_token"]["iss"] == world.hub
        assert body["id_token"]["aud"] == "authlib-rp"
        assert body["id_token"]["sub"] == "zhangsan"
        assert body["id_token"]["email"] == ZHANGSAN.org_email
        assert body["id_token"]["nonce"]  # Authlib sent one and checked it came back
        assert body["userinfo"]["sub"] == "zhangsan"
        assert body["userinfo"]["name"] == ZHANGSAN.name
        assert body["scope"] == "openid profile email"
        refreshed = browser.get(world.authlib_rp + "/refresh").json()
        assert refreshed == {"rotated": True, "sub": "zhangsan"}
        assert browser.get(world.authlib_rp + "/userinfo").json() == {"status": 200}
        # RP-initiated logout: through the hub's end_session_endpoint and back, state checked.
        out = browser.get(world.authlib_rp + "/logout")
        assert out.json() == {"logged_out": True}
        hops = [urlsplit(str(r.url)).path for r in out.history]
        assert "/dingtalk/logout" in hops
        # The tokens of that hub session are revoked.
        assert browser.get(world.authlib_rp + "/userinfo").json() == {"status": 401}
        # And the next login needs DingTalk again.
        again = browser.get(world.authlib_rp + "/login")
        assert "/oauth2/auth" in str(again.url)


def test_requests_oauthlib_with_pkce(world: World) -> None:
    metadata = httpx.get(f"{world.hub}/.well-known/openid-configuration").json()
    client = OAuth2Session(
        "oauthlib-rp",
        redirect_uri=f"{world.oauthlib_rp}/callback",
        scope=["openid", "email"],
        pkce="S256",
    )
    authorization_url, state = client.authorization_url(metadata["authorization_endpoint"])
    assert "code_challenge=" in authorization_url
    assert "code_challenge_method=S256" in authorization_url
    with httpx.Client(follow_redirects=True, timeout=10) as browser:
        callback = sign_in(browser, authorization_url).json()["url"]
    assert f"state={state}" in callback
    token = client.fetch_token(
        metadata["token_endpoint"],
        authorization_response=callback,
        client_secret=OAUTHLIB_SECRET,
    )
    assert token["token_type"] == "Bearer"
    assert token["scope"] == ["openid", "email"]
    assert "id_token" in token
    info = client.get(metadata["userinfo_endpoint"]).json()
    assert info == {"sub": "zhangsan", "unionid": ZHANGSAN.unionid, "email": ZHANGSAN.org_email}
    refreshed = client.refresh_token(
        metadata["token_endpoint"], auth=("oauthlib-rp", OAUTHLIB_SECRET)
    )
    assert refreshed["access_token"] != token["access_token"]
    assert client.get(metadata["userinfo_endpoint"]).json()["sub"] == "zhangsan"


@pytest.mark.browser
def test_logout_asked_on_the_hubs_page_returns_to_the_site_in_chromium(
    world: World, context_factory: ContextFactory
) -> None:
    """Without an id_token_hint a logout from another site is confirmed on the hub's page; after
    that same-origin form, the browser still gets back to the registered post-logout URL
    (a redirect would be refused under the page's `form-action 'self'`)."""
    page = context_factory().new_page()
    page.goto(world.authlib_rp + "/login")
    page.wait_for_url(lambda url: "/oauth2/auth?" in url)
    sign_in_at_dingtalk(page, ZHANGSAN.unionid)
    page.wait_for_url(lambda url: url.startswith(world.authlib_rp + "/callback"))
    page.goto(world.authlib_rp + "/account")
    page.locator("#logout").click()  # a link on the site: the hub sees a cross-site request
    page.wait_for_url(lambda url: url.startswith(world.hub + "/dingtalk/logout?"))
    page.locator("#dingmw-logout").click()
    page.wait_for_url(lambda url: url.startswith(world.authlib_rp + "/logged-out?state="))
    assert '"logged_out":true' in (page.text_content("body") or "").replace(" ", "")
    me = page.request.get(world.hub + "/dingtalk/me")
    assert me.status == 401
