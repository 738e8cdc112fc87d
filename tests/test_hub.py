"""The hub (CONTRACT §6, seed 002): its wire format, every refusal, and sites logging in
through it with either adapter."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, parse_qsl, quote, urlencode, urlsplit

import httpx
import pytest

from dingmw import Settings, StoreError, UpstreamError
from dingmw.config import DEFAULT_LOGIN_URL, HubClient
from dingmw.hub import Hub, HubSettings, create_app
from dingmw.stores.memory import MemoryStore
from dingmw.testing import DEFAULT_APP_KEY, DEFAULT_CORP_ID, LISI, ZHANGSAN, FakeDingTalk

from .support import HTML, TestClient, build_client, command_of, make_settings, page_config

HUB = "http://hub.test"
SITE_A = "http://site-a.test"
SITE_B = "http://site-b.test"
SECRET_A = "site-a-secret-0123456789"
SECRET_B = "site-b-secret-9876543210"
CALLBACK_A = f"{SITE_A}/dingtalk/callback"
CALLBACK_B = f"{SITE_B}/dingtalk/callback"
CLIENTS = (
    HubClient(client_id="site-a", client_secret=SECRET_A, redirect_urls=(CALLBACK_A,)),
    HubClient(client_id="site-b", client_secret=SECRET_B, redirect_urls=(CALLBACK_B,)),
)


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def hub(fake: FakeDingTalk, clock: Clock) -> Hub:
    settings = make_settings("oauth2", enrich="detail", corp_id=DEFAULT_CORP_ID)
    store = MemoryStore(timer=clock).aio()
    hub = HubSettings(clients=CLIENTS)
    return create_app(settings, hub, transport=fake.transport(), store=store, clock=clock)


@pytest.fixture
def hub_browser(hub: Hub) -> Iterator[TestClient]:
    with TestClient(hub, base_url=HUB, follow_redirects=False) as client:
        yield client


def basic(client_id: str, secret: str) -> dict[str, str]:
    token = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"authorization": f"Basic {token}"}


def authorize(
    hub_browser: httpx.Client,
    fake: FakeDingTalk,
    unionid: str,
    *,
    client_id: str = "site-a",
    redirect_url: str = CALLBACK_A,
    state: str = "site-state-1",
) -> str:
    """A person goes through the hub for a site; returns where the hub sends them back."""
    params = {"redirect_url": redirect_url, "client_id": client_id, "state": state}
    response = hub_browser.get("/dingtalk/authorize", params=params, headers=HTML)
    if response.status_code == 200:  # DINGMW_LOGIN_PAGE=qr: the hub's QR page
        callback = fake.scan(page_config(response)["authorize_url"], unionid)
    else:
        assert response.status_code == 302, response.text
        location = str(response.headers["location"])
        if not location.startswith(DEFAULT_LOGIN_URL):
            return location  # single sign-on: straight back to the site
        callback = fake.scan(location, unionid)  # DingTalk's own login page
    response = hub_browser.get(callback, headers=HTML)
    assert response.status_code == 302, response.text
    return str(response.headers["location"])


def code_of(location: str) -> tuple[str, str]:
    query = parse_qs(urlsplit(location).query)
    return query["code"][0], query["state"][0]


def redeem(hub_browser: httpx.Client, body: str, **headers: str) -> httpx.Response:
    return hub_browser.post(
        "/dingtalk/token",
        content=body.encode(),
        headers={"content-type": "text/plain", **basic("site-a", SECRET_A), **headers},
    )


def tokens_for(hub_browser: httpx.Client, fake: FakeDingTalk) -> dict[str, Any]:
    code, state = code_of(authorize(hub_browser, fake, ZHANGSAN.unionid))
    response = redeem(hub_browser, f"code={code}&state={state}")
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


# Wire format -------------------------------------------------------------------------


def test_authorize_without_a_hub_session_goes_straight_to_dingtalk(
    hub_browser: httpx.Client,
) -> None:
    """seed 002: `/authorize` answers with a redirect to DingTalk's login page, whose
    redirect_uri is the hub's callback with the site's URL as `forward_url`."""
    params = {"redirect_url": CALLBACK_A, "client_id": "site-a", "state": "site-state"}
    response = hub_browser.get("/dingtalk/authorize", params=params, headers=HTML)
    assert response.status_code == 302
    parts = urlsplit(response.headers["location"])
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{DEFAULT_LOGIN_URL}/oauth2/auth"
    query = parse_qs(parts.query)
    state = query.pop("state")[0]
    assert query == {
        "client_id": [DEFAULT_APP_KEY],  # the hub's DingTalk app, not the site's client id
        "response_type": ["code"],
        "scope": ["openid"],
        "prompt": ["consent"],
        "redirect_uri": [f"{HUB}/dingtalk/callback?forward_url={quote(CALLBACK_A, safe='')}"],
    }
    assert state != "site-state"  # the hub's own state, bound to this browser:
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("dingmw_session_state_")
    assert "HttpOnly" in cookie
    assert "Path=/dingtalk/;" in cookie


def test_the_hubs_state_is_single_use_and_bound_to_the_browser(
    hub: Hub, hub_browser: TestClient, fake: FakeDingTalk
) -> None:
    callback = dingtalk_callback(hub_browser, fake)
    with TestClient(hub, base_url=HUB, follow_redirects=False) as other_browser:
        stolen = other_browser.get(callback, headers=HTML)
    assert stolen.status_code == 400
    assert 'data-reason="state_unknown"' in stolen.text
    state_cookies = dict(hub_browser.cookies)
    assert hub_browser.get(callback, headers=HTML).status_code == 302
    for name, value in state_cookies.items():  # even with the state cookie put back
        hub_browser.cookies.set(name, value)
    replay = hub_browser.get(callback, headers=HTML)
    assert replay.status_code == 400
    assert 'data-reason="state_used"' in replay.text


def test_login_page_qr_shows_the_hubs_qr_page(fake: FakeDingTalk, clock: Clock) -> None:
    settings = make_settings("oauth2", hub_clients=CLIENTS, login_page="qr")
    hub = create_app(settings, transport=fake.transport(), clock=clock)
    with TestClient(hub, base_url=HUB, follow_redirects=False) as browser:
        params = {"redirect_url": CALLBACK_A, "client_id": "site-a", "state": "s1"}
        page = browser.get("/dingtalk/authorize", params=params, headers=HTML)
        assert page.status_code == 200
        config = page_config(page)
        assert config["redirect_uri"] == (
            f"{HUB}/dingtalk/callback?forward_url={quote(CALLBACK_A, safe='')}"
        )
        location = authorize(browser, fake, ZHANGSAN.unionid, state="s2")
    assert location.startswith(CALLBACK_A + "?")
    assert code_of(location)[1] == "s2"


def test_authorize_sends_back_a_code_and_the_sites_state(
    hub_browser: httpx.Client, fake: FakeDingTalk
) -> None:
    location = authorize(hub_browser, fake, ZHANGSAN.unionid, state="xyz 1")
    assert location.startswith(CALLBACK_A + "?")
    code, state = code_of(location)
    assert state == "xyz 1"
    assert len(base64.urlsafe_b64decode(code + "==")) * 8 >= 128


def test_token_response_has_the_seeds_keys(hub_browser: httpx.Client, fake: FakeDingTalk) -> None:
    code, state = code_of(authorize(hub_browser, fake, ZHANGSAN.unionid))
    response = redeem(hub_browser, f"code={code}&state={state}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    data = response.json()
    assert set(data) == {"access_token", "expiry_in", "refresh_token", "token_type"}
    assert data["token_type"] == "Bearer"
    assert data["expiry_in"] == 7200
    assert isinstance(data["access_token"], str)
    assert isinstance(data["refresh_token"], str)


def test_token_accepts_a_form_encoded_body(hub_browser: httpx.Client, fake: FakeDingTalk) -> None:
    code, state = code_of(authorize(hub_browser, fake, ZHANGSAN.unionid))
    response = hub_browser.post(
        "/dingtalk/token", data={"code": code, "state": state}, headers=basic("site-a", SECRET_A)
    )
    assert response.status_code == 200
    assert response.json()["token_type"] == "Bearer"


@pytest.mark.parametrize("scheme", ["", "Bearer "])
def test_userinfo(hub_browser: httpx.Client, fake: FakeDingTalk, scheme: str) -> None:
    tokens = tokens_for(hub_browser, fake)
    response = hub_browser.get(
        "/dingtalk/userinfo", headers={"authorization": scheme + tokens["access_token"]}
    )
    assert response.status_code == 200
    data = response.json()
    assert data["username"] == "zhangsan"
    assert data["email"] == ZHANGSAN.org_email  # the organisation email (enrichment)
    assert data["unionid"] == ZHANGSAN.unionid
    assert data["userid"] == "zhangsan"
    assert data["dept_ids"] == [1, 100]


def test_second_site_needs_no_second_scan(hub_browser: httpx.Client, fake: FakeDingTalk) -> None:
    authorize(hub_browser, fake, ZHANGSAN.unionid)
    location = authorize(
        hub_browser, fake, LISI.unionid, client_id="site-b", redirect_url=CALLBACK_B
    )
    assert location.startswith(CALLBACK_B + "?")
    assert fake.calls["/v1.0/oauth2/userAccessToken"] == 1
    code, state = code_of(location)
    response = hub_browser.post(
        "/dingtalk/token",
        content=f"code={code}&state={state}".encode(),
        headers=basic("site-b", SECRET_B),
    )
    userinfo = hub_browser.get(
        "/dingtalk/userinfo", headers={"authorization": response.json()["access_token"]}
    )
    assert userinfo.json()["unionid"] == ZHANGSAN.unionid  # the hub session's person


# Refusals ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("client_id", "redirect_url", "reason"),
    [
        ("nobody", CALLBACK_A, "unknown_client"),
        ("site-a", CALLBACK_B, "redirect_not_registered"),  # another client's URL
        ("site-a", CALLBACK_A + "/", "redirect_not_registered"),
        ("site-a", CALLBACK_A + "x", "redirect_not_registered"),
        ("site-a", CALLBACK_A + "?next=/", "redirect_not_registered"),
        ("site-a", "http://site-a.test:8080/dingtalk/callback", "redirect_not_registered"),
        ("site-a", "https://site-a.test/dingtalk/callback", "redirect_not_registered"),
        ("site-a", "http://evil.test/dingtalk/callback", "redirect_not_registered"),
    ],
)
def test_authorize_refuses_unregistered_clients_and_urls(
    hub_browser: httpx.Client, client_id: str, redirect_url: str, reason: str
) -> None:
    response = hub_browser.get(
        "/dingtalk/authorize",
        params={"redirect_url": redirect_url, "client_id": client_id, "state": "s"},
        headers=HTML,
    )
    assert response.status_code == 400
    assert f'data-reason="{reason}"' in response.text
    assert "location" not in response.headers


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": "Bearer abc"},
        {"authorization": "Basic !!!"},
        basic("site-a", "wrong-secret-000000000"),
        basic("nobody", SECRET_A),
        basic("site-a", ""),
    ],
)
def test_token_refuses_bad_client_credentials(
    hub_browser: httpx.Client, fake: FakeDingTalk, headers: dict[str, str]
) -> None:
    code, state = code_of(authorize(hub_browser, fake, ZHANGSAN.unionid))
    response = hub_browser.post(
        "/dingtalk/token",
        content=f"code={code}&state={state}".encode(),
        headers={"content-type": "text/plain", **headers},
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic")
    # The code was not consumed by the failed attempt.
    assert redeem(hub_browser, f"code={code}&state={state}").status_code == 200


def test_code_is_single_use_and_replay_revokes_its_tokens(
    hub_browser: httpx.Client, fake: FakeDingTalk
) -> None:
    code, state = code_of(authorize(hub_browser, fake, ZHANGSAN.unionid))
    first = redeem(hub_browser, f"code={code}&state={state}").json()
    replay = redeem(hub_browser, f"code={code}&state={state}")
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    userinfo = hub_browser.get(
        "/dingtalk/userinfo", headers={"authorization": first["access_token"]}
    )
    assert userinfo.status_code == 401
    refreshed = redeem(
        hub_browser, f"grant_type=refresh_token&refresh_token={first['refresh_token']}"
    )
    assert refreshed.status_code == 400


def test_code_is_bound_to_its_client(hub_browser: httpx.Client, fake: FakeDingTalk) -> None:
    code, state = code_of(authorize(hub_browser, fake, ZHANGSAN.unionid))
    response = hub_browser.post(
        "/dingtalk/token",
        content=f"code={code}&state={state}".encode(),
        headers={"content-type": "text/plain", **basic("site-b", SECRET_B)},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert redeem(hub_browser, f"code={code}&state={state}").status_code == 400  # burnt


def test_code_is_bound_to_state_and_redirect_url(
    hub_browser: httpx.Client, fake: FakeDingTalk
) -> None:
    code, _ = code_of(authorize(hub_browser, fake, ZHANGSAN.unionid))
    assert redeem(hub_browser, f"code={code}&state=other").status_code == 400
    hub_browser.cookies.clear()
    code, state = code_of(authorize(hub_browser, fake, ZHANGSAN.unionid))
    wrong = redeem(hub_browser, f"code={code}&state={state}&redirect_url={CALLBACK_B}")
    assert wrong.status_code == 400


def test_code_expires_after_60_seconds(
    hub_browser: httpx.Client, fake: FakeDingTalk, clock: Clock
) -> None:
    code, state = code_of(authorize(hub_browser, fake, ZHANGSAN.unionid))
    clock.now += 61
    response = redeem(hub_browser, f"code={code}&state={state}")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_access_token_expires(hub_browser: httpx.Client, fake: FakeDingTalk, clock: Clock) -> None:
    tokens = tokens_for(hub_browser, fake)
    clock.now += 7201
    response = hub_browser.get(
        "/dingtalk/userinfo", headers={"authorization": f"Bearer {tokens['access_token']}"}
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert "invalid_token" in response.headers["www-authenticate"]


def test_refresh_tokens_rotate_and_reuse_is_refused(
    hub_browser: httpx.Client, fake: FakeDingTalk
) -> None:
    tokens = tokens_for(hub_browser, fake)
    rotated = redeem(
        hub_browser, f"grant_type=refresh_token&refresh_token={tokens['refresh_token']}"
    )
    assert rotated.status_code == 200
    new = rotated.json()
    assert new["refresh_token"] != tokens["refresh_token"]
    assert new["access_token"] != tokens["access_token"]
    reuse = redeem(hub_browser, f"grant_type=refresh_token&refresh_token={tokens['refresh_token']}")
    assert reuse.status_code == 400
    assert reuse.json()["error"] == "invalid_grant"
    # Reuse means theft: the whole family is revoked, the rotated tokens included.
    userinfo = hub_browser.get("/dingtalk/userinfo", headers={"authorization": new["access_token"]})
    assert userinfo.status_code == 401
    again = redeem(hub_browser, f"grant_type=refresh_token&refresh_token={new['refresh_token']}")
    assert again.status_code == 400


def test_refresh_token_is_bound_to_its_client(
    hub_browser: httpx.Client, fake: FakeDingTalk
) -> None:
    tokens = tokens_for(hub_browser, fake)
    response = hub_browser.post(
        "/dingtalk/token",
        content=f"grant_type=refresh_token&refresh_token={tokens['refresh_token']}".encode(),
        headers={"content-type": "text/plain", **basic("site-b", SECRET_B)},
    )
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("body", "content_type", "error"),
    [
        ("", "text/plain", "invalid_request"),
        ("state=x", "text/plain", "invalid_request"),
        ("grant_type=password&username=a", "text/plain", "unsupported_grant_type"),
        ("grant_type=refresh_token", "text/plain", "invalid_request"),
        ('{"code": "x"}', "application/json", "invalid_request"),
        ("code=unknown&state=x", "text/plain", "invalid_grant"),
    ],
)
def test_token_refuses_bad_requests(
    hub_browser: httpx.Client, body: str, content_type: str, error: str
) -> None:
    response = hub_browser.post(
        "/dingtalk/token",
        content=body.encode(),
        headers={"content-type": content_type, **basic("site-a", SECRET_A)},
    )
    assert response.status_code == 400
    assert response.json()["error"] == error


def test_token_needs_post_and_a_small_body(hub_browser: httpx.Client) -> None:
    assert hub_browser.get("/dingtalk/token").status_code == 405
    big = redeem(hub_browser, "code=" + "x" * 20000)
    assert big.status_code == 413


@pytest.mark.parametrize("authorization", ["", "Bearer ", "Bearer nope", "nope"])
def test_userinfo_refuses_bad_tokens(hub_browser: httpx.Client, authorization: str) -> None:
    response = hub_browser.get("/dingtalk/userinfo", headers={"authorization": authorization})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


def dingtalk_callback(hub_browser: httpx.Client, fake: FakeDingTalk) -> str:
    """Where DingTalk sends the browser back to the hub, after a scan for site A."""
    params = {"redirect_url": CALLBACK_A, "client_id": "site-a", "state": "s"}
    login = hub_browser.get("/dingtalk/authorize", params=params, headers=HTML)
    return fake.scan(login.headers["location"], ZHANGSAN.unionid)


def replace_param(url: str, name: str, value: str | None) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != name]
    if value is not None:
        query.insert(0, (name, value))
    return parts._replace(query=urlencode(query)).geturl()


@pytest.mark.parametrize(
    "forward_url",
    [
        "http://evil.test/",
        CALLBACK_B,  # registered, but for another client
        CALLBACK_A + "/",
        "",
        None,  # left out
    ],
)
def test_hub_callback_with_another_forward_url_is_refused(
    hub_browser: httpx.Client, fake: FakeDingTalk, forward_url: str | None
) -> None:
    callback = dingtalk_callback(hub_browser, fake)
    assert parse_qs(urlsplit(callback).query)["forward_url"] == [CALLBACK_A]
    response = hub_browser.get(replace_param(callback, "forward_url", forward_url), headers=HTML)
    assert response.status_code == 400
    assert 'data-reason="redirect_not_registered"' in response.text
    assert "location" not in response.headers
    assert not any(c.startswith("dingmw_session=") for c in response.headers.get_list("set-cookie"))


def test_hub_refuses_to_start_without_clients(
    fake: FakeDingTalk, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dingmw import ConfigError

    monkeypatch.delenv("DINGMW_HUB_CLIENTS", raising=False)
    with pytest.raises(ConfigError, match="DINGMW_HUB_CLIENTS must register at least one site"):
        create_app(make_settings("oauth2"), transport=fake.transport())
    with pytest.raises(ConfigError, match="DINGMW_HUB_CLIENTS must register at least one site"):
        HubSettings()


def test_hub_settings_from_env(tmp_path: Any) -> None:
    clients = [{"client_id": "a", "client_secret": SECRET_A, "redirect_urls": [CALLBACK_A]}]
    env = {"DINGMW_HUB_CLIENTS": json.dumps(clients), "DINGMW_HUB_CODE_TTL": "30"}
    hub = HubSettings.from_env(env)
    assert hub.clients[0].redirect_urls == (CALLBACK_A,)
    assert hub.code_ttl == 30
    assert hub.token_ttl == 7200
    assert SECRET_A not in repr(hub)
    path = tmp_path / "clients.json"
    path.write_text(json.dumps(clients))
    assert HubSettings.from_env({"DINGMW_HUB_CLIENTS": str(path)}).clients == hub.clients


def test_create_app_reads_the_hub_settings_from_the_environment(
    fake: FakeDingTalk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`create_app(Settings.from_env())`, as `dingmw hub` and the docs do."""
    clients = [{"client_id": "site-a", "client_secret": SECRET_A, "redirect_urls": [CALLBACK_A]}]
    monkeypatch.setenv("DINGMW_HUB_CLIENTS", json.dumps(clients))
    monkeypatch.setenv("DINGMW_HUB_TOKEN_TTL", "600")
    hub = create_app(make_settings("oauth2"), transport=fake.transport())
    assert hub.hub_settings.clients[0].client_id == "site-a"
    assert hub.hub_settings.token_ttl == 600


def test_create_app_still_takes_the_older_settings_fields(fake: FakeDingTalk, clock: Clock) -> None:
    """`Settings(hub_clients=…, hub_code_ttl=…)`, built in Python, as before `HubSettings`."""
    settings = make_settings("oauth2", hub_clients=CLIENTS, hub_code_ttl=5)
    store = MemoryStore(timer=clock).aio()
    hub = create_app(settings, transport=fake.transport(), store=store, clock=clock)
    assert hub.hub_settings == HubSettings(clients=CLIENTS, code_ttl=5)
    with TestClient(hub, base_url=HUB, follow_redirects=False) as browser:
        code, state = code_of(authorize(browser, fake, ZHANGSAN.unionid))
        clock.now += 6
        assert redeem(browser, f"code={code}&state={state}").status_code == 400


@pytest.mark.parametrize(
    "clients",
    [
        "not json",
        "{}",
        '[{"client_id": "a"}]',
        '[{"client_id": "a", "client_secret": "short", "redirect_urls": ["http://a/cb"]}]',
        '[{"client_id": "a", "client_secret": "0123456789abcdef", "redirect_urls": ["/cb"]}]',
        '[{"client_id": "a", "client_secret": "0123456789abcdef", "redirect_urls": []}]',
        "/no/such/file.json",
    ],
)
def test_bad_hub_clients_name_the_variable(clients: str) -> None:
    from dingmw import ConfigError

    env = {
        "DINGMW_APP_KEY": "k",
        "DINGMW_APP_SECRET": "s",
        "DINGMW_SECRET_KEY": "x" * 32,
        "DINGMW_HUB_CLIENTS": clients,
    }
    with pytest.raises(ConfigError, match="DINGMW_HUB_CLIENTS") as info:
        HubSettings.from_env(env)
    assert "0123456789abcdef" not in str(info.value)


# Sites logging in through the hub -------------------------------------------------------


def site_settings(client_id: str = "site-a", secret: str = SECRET_A, **extra: Any) -> Settings:
    return make_settings("hub", hub_url=HUB, app_key=client_id, app_secret=secret, **extra)


def test_site_logs_in_through_the_hub(
    adapter: str, hub: Hub, hub_browser: TestClient, fake: FakeDingTalk
) -> None:
    if adapter == "asgi":
        to_hub: dict[str, Any] = {"client": httpx.AsyncClient(transport=httpx.ASGITransport(hub))}
    else:
        to_hub = {"client": hub_browser}
    site: httpx.Client = build_client(adapter, site_settings(), fake, **to_hub)
    site.base_url = httpx.URL(SITE_A)
    start = site.get("/reports", headers=HTML)
    assert start.status_code == 302
    login = site.get(start.headers["location"], headers=HTML)
    assert login.status_code == 302
    assert login.headers["location"].startswith(f"{HUB}/dingtalk/authorize?")
    query = parse_qs(urlsplit(login.headers["location"]).query)
    assert query["redirect_url"] == [CALLBACK_A]
    assert query["client_id"] == ["site-a"]
    back = authorize(hub_browser, fake, ZHANGSAN.unionid, state=query["state"][0])
    done = site.get(back, headers=HTML)
    assert done.status_code == 302, done.text
    assert done.headers["location"] == "/reports"
    me = site.get("/dingtalk/me").json()
    assert me["unionid"] == ZHANGSAN.unionid
    assert me["userid"] == "zhangsan"
    assert me["flow"] == "hub"
    assert site.get("/reports").json()["userid"] == "zhangsan"
    # The site's own state protection still holds: replaying the hub's redirect fails.
    assert site.get(back, headers=HTML).status_code == 400


def test_hub_logout_logs_the_person_out_of_the_sites_sharing_its_store(
    adapter: str, fake: FakeDingTalk, clock: Clock
) -> None:
    """A site with DINGMW_FLOW=hub honours the revocations the hub at its DINGMW_HUB_URL
    writes: logging out of the hub ends the person's sessions there too."""
    store = MemoryStore(timer=clock)
    hub = create_app(
        make_settings("oauth2"),
        HubSettings(clients=CLIENTS),
        transport=fake.transport(),
        store=store.aio(),
        clock=clock,
    )
    with TestClient(hub, base_url=HUB, follow_redirects=False) as hub_browser:
        if adapter == "asgi":
            to_hub: dict[str, Any] = {
                "client": httpx.AsyncClient(transport=httpx.ASGITransport(hub)),
                "store": store.aio(),
            }
        else:
            to_hub = {"client": hub_browser, "store": store}
        site: httpx.Client = build_client(
            adapter, site_settings(session_recheck=0), fake, clock=clock, **to_hub
        )
        site.base_url = httpx.URL(SITE_A)
        login = site.get("/dingtalk/login", headers=HTML)
        state = parse_qs(urlsplit(login.headers["location"]).query)["state"][0]
        back = authorize(hub_browser, fake, ZHANGSAN.unionid, state=state)
        assert site.get(back, headers=HTML).status_code == 302
        assert site.get("/dingtalk/me").status_code == 200
        clock.now += 1
        logout = hub_browser.post("/dingtalk/logout", headers={"sec-fetch-site": "same-origin"})
        assert logout.status_code == 200
        assert site.get("/dingtalk/me").status_code == 401


def test_site_shows_a_502_when_the_hub_refuses(
    adapter: str, hub: Hub, hub_browser: TestClient, fake: FakeDingTalk
) -> None:
    wrong = site_settings(secret="not-the-right-secret-00")
    if adapter == "asgi":
        to_hub: dict[str, Any] = {"client": httpx.AsyncClient(transport=httpx.ASGITransport(hub))}
    else:
        to_hub = {"client": hub_browser}
    site: httpx.Client = build_client(adapter, wrong, fake, **to_hub)
    site.base_url = httpx.URL(SITE_A)
    login = site.get("/dingtalk/login", headers=HTML)
    state = parse_qs(urlsplit(login.headers["location"]).query)["state"][0]
    back = authorize(hub_browser, fake, ZHANGSAN.unionid, state=state)
    response = site.get(back, headers=HTML)
    assert response.status_code == 502
    assert "hub/token" in response.text
    assert "invalid_client" in response.text
    assert "not-the-right-secret" not in response.text


def test_authorize_is_get_or_post_never_head(hub_browser: httpx.Client, fake: FakeDingTalk) -> None:
    """A HEAD (a link checker, a prefetch) must not mint a code."""
    authorize(hub_browser, fake, ZHANGSAN.unionid)  # now with a hub session
    params = {"redirect_url": CALLBACK_A, "client_id": "site-a", "state": "s"}
    response = hub_browser.head("/dingtalk/authorize", params=params)
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"


def test_a_denial_at_dingtalk_in_the_seeds_dialect_is_the_hubs_page(
    hub_browser: httpx.Client, fake: FakeDingTalk
) -> None:
    """The seed's dialect has no error parameters: the person sees the hub's page."""
    params = {"redirect_url": CALLBACK_A, "client_id": "site-a", "state": "s"}
    start = hub_browser.get("/dingtalk/authorize", params=params, headers=HTML)
    denied = hub_browser.get(
        fake.scan(start.headers["location"], ZHANGSAN.unionid, deny=True), headers=HTML
    )
    assert denied.status_code == 400
    assert "location" not in denied.headers
    assert "dingtalk_denied" in denied.text


def test_a_repeated_authorize_parameter_is_a_page_never_a_redirect(
    hub_browser: httpx.Client,
) -> None:
    query = f"redirect_url={CALLBACK_A}&client_id=site-a&state=s&redirect_url=http://evil.example/"
    response = hub_browser.get(f"/dingtalk/authorize?{query}", headers=HTML)
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "repeated" in response.text


class BrokenStore:
    """A store whose backend is down."""

    async def get(self, key: str) -> str | None:
        raise StoreError("Redis GET unreachable")

    async def put(self, key: str, value: str, ttl: float, *, only_if_absent: bool = False) -> bool:
        raise StoreError("Redis SET unreachable")

    async def take(self, key: str) -> str | None:
        raise StoreError("Redis GETDEL unreachable")

    async def delete(self, key: str) -> None:
        raise StoreError("Redis DEL unreachable")

    async def ping(self, within: float) -> None:
        raise StoreError("Redis PING unreachable")


def test_store_outage_is_a_503_everywhere(
    hub: Hub, hub_browser: TestClient, fake: FakeDingTalk
) -> None:
    authorize(hub_browser, fake, ZHANGSAN.unionid)  # a hub session, while the store works
    hub.effects.store = BrokenStore()
    params = {"redirect_url": CALLBACK_A, "client_id": "site-a", "state": "s"}
    page = hub_browser.get("/dingtalk/authorize", params=params, headers=HTML)
    assert page.status_code == 503
    assert 'data-reason="store_unavailable"' in page.text
    assert "unreachable" not in page.text  # infrastructure details stay in the log
    token = redeem(hub_browser, "code=abc&state=s")
    assert token.status_code == 503
    assert token.json()["error"] == "temporarily_unavailable"
    userinfo = hub_browser.get("/dingtalk/userinfo", headers={"authorization": "Bearer t"})
    assert userinfo.status_code == 503


def test_hub_honours_a_trusted_forwarded_prefix(fake: FakeDingTalk) -> None:
    settings = make_settings("oauth2", hub_clients=CLIENTS, trust_proxy=True)
    hub = create_app(settings, transport=fake.transport())
    with TestClient(hub, base_url=HUB, follow_redirects=False) as browser:
        params = {"redirect_url": CALLBACK_A, "client_id": "site-a", "state": "s"}
        response = browser.get(
            "/dingtalk/authorize", params=params, headers={"x-forwarded-prefix": "/sso"}
        )
    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["redirect_uri"] == [
        f"{HUB}/sso/dingtalk/callback?forward_url={quote(CALLBACK_A, safe='')}"
    ]
    assert "Path=/sso/dingtalk/;" in response.headers["set-cookie"]


def test_check_live_proves_hub_client_credentials(
    hub: Hub, hub_browser: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    from dingmw.checks import live_check
    from dingmw.core.drive import SyncRunner
    from dingmw.stores.memory import MemoryStore

    ok = SyncRunner(hub_browser, MemoryStore()).run(live_check(site_settings()))
    assert ok == ["store: memory:// answers", "hub/token: client site-a accepted by the hub"]
    with pytest.raises(UpstreamError, match="invalid_client"):
        SyncRunner(hub_browser, MemoryStore()).run(
            live_check(site_settings(secret="wrong-secret-0000000000"))
        )


# The seed's wire format, byte for byte ----------------------------------------------------


def test_the_seeds_token_request_verbatim(hub_browser: httpx.Client, fake: FakeDingTalk) -> None:
    """seed 002: POST /dingtalk/token, Authorization: Basic base64(id:secret),
    Content-Type: text/plain, body `code={{authCode}}&state={{state}}`."""
    code, _ = code_of(authorize(hub_browser, fake, ZHANGSAN.unionid, state="STATE"))
    raw = f"code={code}&state=STATE".encode()
    credentials = base64.b64encode(f"site-a:{SECRET_A}".encode()).decode()
    response = hub_browser.post(
        "/dingtalk/token",
        content=raw,
        headers={"Authorization": f"Basic {credentials}", "Content-Type": "text/plain"},
    )
    assert response.status_code == 200
    keys = list(json.loads(response.content))
    assert keys == ["access_token", "expiry_in", "refresh_token", "token_type"]
    # and the seed's userinfo call: `Authorization: <access_token>`, answered with username/email
    info = hub_browser.get(
        "/dingtalk/userinfo", headers={"Authorization": response.json()["access_token"]}
    ).json()
    assert info["username"] == "zhangsan"
    assert info["email"] == ZHANGSAN.org_email


def test_a_site_speaks_the_seeds_wire_format() -> None:
    """What DINGMW_FLOW=hub sends, checked request by request."""
    sent: list[httpx.Request] = []

    def hub(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        if request.url.path == "/dingtalk/token":
            return httpx.Response(
                200,
                json={
                    "access_token": "5b148efae4f9371ab52386f64109495e",
                    "expiry_in": 7200,
                    "refresh_token": "ab76ccb32a293e0e823554583e2680aa",
                    "token_type": "Bearer",
                },
            )
        return httpx.Response(
            200, json={"username": "xxx", "email": "xxx@example.com", "unionid": "u1"}
        )

    from dingmw.core.drive import SyncRunner
    from dingmw.providers.hubclient import HubProvider

    provider = HubProvider(site_settings(), lambda: 0.0)
    with httpx.Client(transport=httpx.MockTransport(hub)) as client:
        identity = SyncRunner(client, MemoryStore()).run(
            provider.exchange("THECODE", redirect_uri=CALLBACK_A, state="THESTATE")
        )
    token, userinfo = sent
    assert token.method == "POST"
    assert str(token.url) == f"{HUB}/dingtalk/token"
    expected = base64.b64encode(f"site-a:{SECRET_A}".encode()).decode()
    assert token.headers["authorization"] == f"Basic {expected}"
    assert token.headers["content-type"] == "text/plain"
    assert token.content == b"code=THECODE&state=THESTATE"
    assert userinfo.method == "GET"
    assert str(userinfo.url) == f"{HUB}/dingtalk/userinfo"
    assert userinfo.headers["authorization"] == "5b148efae4f9371ab52386f64109495e"
    assert identity.unionid == "u1"
    assert identity.email == "xxx@example.com"
    assert identity.flow == "hub"


def test_authorize_url_uses_the_seeds_parameter_names() -> None:
    from dingmw.providers.hubclient import HubProvider

    widget = HubProvider(site_settings(), lambda: 0.0).widget(state="S1", redirect_uri=CALLBACK_A)
    parts = urlsplit(widget.authorize_url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{HUB}/dingtalk/authorize"
    assert parse_qs(parts.query) == {
        "redirect_url": [CALLBACK_A],
        "client_id": ["site-a"],
        "state": ["S1"],
    }


def test_check_reports_the_hubs_own_settings() -> None:
    """`dingmw check` on a hub's environment checks `HubSettings` too, and shows them."""
    from dingmw.checks import describe, problems

    env = {
        "DINGMW_APP_KEY": "k",
        "DINGMW_APP_SECRET": "s",
        "DINGMW_SECRET_KEY": "x" * 32,
        "DINGMW_HUB_CLIENTS": "[not json",
        "DINGMW_HUB_CODE_TTL": "0",
    }
    settings, found = problems(env)
    assert "DINGMW_HUB_CLIENTS is not valid JSON" in found
    assert "DINGMW_HUB_CODE_TTL must be a positive number of seconds" in found
    clients = [{"client_id": "a", "client_secret": SECRET_A, "redirect_urls": [CALLBACK_A]}]
    good = {**env, "DINGMW_HUB_CLIENTS": json.dumps(clients), "DINGMW_HUB_CODE_TTL": "30"}
    settings, found = problems(good)
    assert found == []
    assert settings is not None
    lines = describe(settings, good)
    assert any(
        line.startswith("DINGMW_HUB_CLIENTS") and "a (secrets not shown)" in line for line in lines
    )
    assert not any(SECRET_A in line for line in lines)


def test_check_deploy_warns_about_http_redirect_urls_of_the_hubs_clients() -> None:
    from dingmw.checks import run

    clients = [{"client_id": "a", "client_secret": SECRET_A, "redirect_urls": [CALLBACK_A]}]
    env = {
        "DINGMW_APP_KEY": "k",
        "DINGMW_APP_SECRET": "s",
        "DINGMW_SECRET_KEY": "x" * 32,
        "DINGMW_HUB_CLIENTS": json.dumps(clients),
    }
    report = run(env, deploy=True)
    assert report.errors == []
    assert any("'a' has an http redirect URL" in warning for warning in report.warnings)


class RoundTrips(MemoryStore):
    """A memory store that records each round trip a Redis store would make: a single
    operation, or a batch (one pipeline)."""

    def __init__(self, timer: Clock) -> None:
        super().__init__(timer=timer)
        self.trips: list[list[str]] = []
        self._batching = False

    def _record(self, command: str) -> None:
        if not self._batching:
            self.trips.append([command])

    def get(self, key: str) -> str | None:
        self._record("get")
        return super().get(key)

    def put(self, key: str, value: str, ttl: float, *, only_if_absent: bool = False) -> bool:
        self._record("put")
        return super().put(key, value, ttl, only_if_absent=only_if_absent)

    def take(self, key: str) -> str | None:
        self._record("take")
        return super().take(key)

    def batch(self, ops: Any) -> Any:
        self.trips.append([command_of(op) for op in ops])
        self._batching = True
        try:
            return super().batch(ops)
        finally:
            self._batching = False


def test_a_grant_takes_two_store_round_trips_and_userinfo_two(
    fake: FakeDingTalk, clock: Clock
) -> None:
    """Take the code; then mark it used, write both tokens and read both revocation markers."""
    store = RoundTrips(clock)
    settings = make_settings("oauth2", enrich="detail", corp_id=DEFAULT_CORP_ID)
    hub = create_app(
        settings, HubSettings(clients=CLIENTS), transport=fake.transport(), store=store.aio()
    )
    with TestClient(hub, base_url=HUB, follow_redirects=False) as browser:
        code, state = code_of(authorize(browser, fake, ZHANGSAN.unionid))
        store.trips.clear()
        tokens = redeem(browser, f"code={code}&state={state}").json()
        assert store.trips == [["take"], ["put", "put", "put", "get", "get"]]
        store.trips.clear()
        userinfo = browser.get(
            "/dingtalk/userinfo", headers={"authorization": tokens["access_token"]}
        )
        assert userinfo.status_code == 200
        assert store.trips == [["get"], ["get", "get"]]
        store.trips.clear()
        body = f"grant_type=refresh_token&refresh_token={tokens['refresh_token']}"
        assert redeem(browser, body).status_code == 200
        assert store.trips == [["take"], ["put", "put", "put", "get", "get"]]
