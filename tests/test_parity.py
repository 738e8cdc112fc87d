"""One scenario table, run through both adapters (ASGI and WSGI) and every flow.

Each scenario is written once; the `client_factory` fixture gives a
browser-like `httpx.Client` in front of either adapter, with the fake
DingTalk behind it.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from dingmw.testing import LISI, OUTSIDER, ZHANGSAN, FakeDingTalk

from .support import FLOWS, HTML, ClientFactory, login, make_settings, page_config, start_login

# The DingTalk call that turns a code into a person, per flow, and its name in error pages.
EXCHANGE_CALL = {
    "oauth2": ("/v1.0/oauth2/userAccessToken", "oauth2/userAccessToken"),
    "sns": ("/sns/get_persistent_code", "sns/get_persistent_code"),
    "bycode": ("/sns/getuserinfo_bycode", "sns/getuserinfo_bycode"),
}


@pytest.fixture(params=FLOWS)
def flow(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


def test_anonymous_browser_is_sent_to_the_login_page(client_factory: ClientFactory) -> None:
    client = client_factory()
    response = client.get("/reports/q3?year=2026", headers=HTML)
    assert response.status_code == 302
    assert response.headers["location"] == "/dingtalk/login?next=/reports/q3%3Fyear%3D2026"
    assert "set-cookie" not in response.headers


def test_anonymous_api_call_gets_401_json(client_factory: ClientFactory) -> None:
    client = client_factory()
    for response in (
        client.get("/api/items", headers={"accept": "application/json"}),
        client.post("/api/items", headers=HTML),
        client.get("/api/items"),
    ):
        assert response.status_code == 401
        assert response.json() == {
            "error": "login_required",
            "login_url": "/dingtalk/login?next=/api/items",
        }


def test_public_paths_pass_without_login(client_factory: ClientFactory) -> None:
    client = client_factory()
    assert client.get("/health").text == "ok"
    body = client.get("/static/app.css").json()
    assert body["unionid"] is None
    # Dot segments never make a protected path public.
    assert client.get("/static/../admin", headers=HTML).status_code == 302


def test_full_login_round_trip(
    client_factory: ClientFactory, fake: FakeDingTalk, flow: str
) -> None:
    client = client_factory(make_settings(flow))
    response = login(client, fake, ZHANGSAN.unionid, next_path="/private?tab=2")
    assert response.status_code == 302, response.text
    assert response.headers["location"] == "/private?tab=2"
    cookies = response.headers.get_list("set-cookie")
    session = [c for c in cookies if c.startswith("dingmw_session=")]
    assert len(session) == 1
    assert "HttpOnly" in session[0]
    assert "SameSite=Lax" in session[0]
    assert "Max-Age=28800" in session[0]

    whoami = client.get("/private", headers=HTML)
    assert whoami.status_code == 200
    assert whoami.json()["unionid"] == ZHANGSAN.unionid
    assert whoami.json()["display"] == ZHANGSAN.nick
    # The hot path re-sets nothing.
    assert "set-cookie" not in whoami.headers

    me = client.get("/dingtalk/me").json()
    assert me["unionid"] == ZHANGSAN.unionid
    assert me["flow"] == flow
    assert me["nick"] == ZHANGSAN.nick
    assert me["openid"]

    auth = client.get("/dingtalk/auth")
    assert auth.status_code == 204
    assert auth.headers["x-dingtalk-unionid"] == ZHANGSAN.unionid


def test_callback_accepts_code_when_oauth2_sends_both(
    client_factory: ClientFactory, fake: FakeDingTalk
) -> None:
    fake.oauth2_also_code = True
    client = client_factory(make_settings("oauth2"))
    assert login(client, fake, LISI.unionid).status_code == 302
    assert client.get("/private").json()["unionid"] == LISI.unionid


def test_replayed_callback_is_refused(
    client_factory: ClientFactory, fake: FakeDingTalk, flow: str
) -> None:
    client = client_factory(make_settings(flow))
    config = start_login(client)
    location = fake.scan(config["authorize_url"], ZHANGSAN.unionid)
    assert client.get(location).status_code == 302
    # The browser still holds a (re-sent) state cookie? It was cleared; replay it by hand too.
    replay = client.get(location, headers=HTML)
    assert replay.status_code == 400
    assert 'data-reason="state_unknown"' in replay.text or 'data-reason="state_used"' in replay.text


def test_state_is_single_use_even_with_the_cookie(
    client_factory: ClientFactory, fake: FakeDingTalk, flow: str
) -> None:
    client = client_factory(make_settings(flow))
    login_page = client.get("/dingtalk/login", params={"next": "/x"}, headers=HTML)
    config = page_config(login_page)
    state_cookie = next(c for c in client.cookies.jar if c.name.startswith("dingmw_session_state_"))
    location = fake.scan(config["authorize_url"], ZHANGSAN.unionid)
    assert client.get(location).status_code == 302
    # An attacker who captured both the cookie and the callback URL cannot replay them.
    client.cookies.set(state_cookie.name, state_cookie.value or "", path=state_cookie.path)
    replay = client.get(location, headers=HTML)
    assert replay.status_code == 400
    assert 'data-reason="state_used"' in replay.text


def test_callback_from_another_browser_is_refused(
    client_factory: ClientFactory, fake: FakeDingTalk, flow: str
) -> None:
    victim = client_factory(make_settings(flow))
    attacker = client_factory(make_settings(flow))
    config = start_login(attacker)
    location = fake.scan(config["authorize_url"], OUTSIDER.unionid)
    # Login CSRF: the attacker's callback URL opened in the victim's browser.
    response = victim.get(location, headers=HTML)
    assert response.status_code == 400
    assert 'data-reason="state_unknown"' in response.text
    assert victim.get("/private", headers=HTML).status_code == 302


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("code=abc", "state_missing"),
        ("code=abc&state=", "state_missing"),
        ("code=abc&state=forged", "state_unknown"),
        ("code=abc&state=" + "A" * 32, "state_unknown"),
    ],
)
def test_bad_state_is_a_400_page(client_factory: ClientFactory, query: str, reason: str) -> None:
    client = client_factory()
    response = client.get(f"/dingtalk/callback?{query}", headers=HTML)
    assert response.status_code == 400
    assert f'data-reason="{reason}"' in response.text
    assert "Traceback" not in response.text


def test_two_tabs_can_log_in_at_once(
    client_factory: ClientFactory, fake: FakeDingTalk, flow: str
) -> None:
    client = client_factory(make_settings(flow))
    first = start_login(client, "/one")
    second = start_login(client, "/two")
    assert first["state"] != second["state"]
    second_done = client.get(fake.scan(second["authorize_url"], LISI.unionid))
    first_done = client.get(fake.scan(first["authorize_url"], ZHANGSAN.unionid))
    assert second_done.headers["location"] == "/two"
    assert first_done.headers["location"] == "/one"


def test_dingtalk_refusal_is_a_4xx_page(client_factory: ClientFactory, fake: FakeDingTalk) -> None:
    client = client_factory(make_settings("oauth2"))
    config = start_login(client)
    location = fake.scan(config["authorize_url"], ZHANGSAN.unionid, deny=True)
    assert "error=" in location
    response = client.get(location, headers=HTML)
    assert response.status_code == 400
    assert 'data-reason="dingtalk_denied"' in response.text
    assert "dingmw_session=" not in response.headers.get("set-cookie", "")


def test_dingtalk_error_is_a_502_naming_the_call(
    client_factory: ClientFactory, fake: FakeDingTalk, flow: str
) -> None:
    path, call = EXCHANGE_CALL[flow]
    if path.startswith("/v1.0"):
        fake.inject(path, status=500, code="ServiceUnavailable", message="busy")
    else:
        fake.inject(path, errcode=-1, message="系统繁忙", times=2)  # app-token calls: twice
    client = client_factory(make_settings(flow))
    response = login(client, fake, ZHANGSAN.unionid)
    assert response.status_code == 502
    assert call in response.text
    assert "Traceback" not in response.text
    assert "dingmw_session=" not in ";".join(response.headers.get_list("set-cookie"))


def test_dingtalk_timeout_is_a_502(
    client_factory: ClientFactory, fake: FakeDingTalk, flow: str
) -> None:
    path, call = EXCHANGE_CALL[flow]
    fake.inject(path, timeout=True)
    client = client_factory(make_settings(flow))
    response = login(client, fake, ZHANGSAN.unionid)
    assert response.status_code == 502
    assert 'data-reason="upstream_timeout"' in response.text
    assert call in response.text


def test_bad_json_from_dingtalk_is_a_502(
    client_factory: ClientFactory, fake: FakeDingTalk, flow: str
) -> None:
    path, call = EXCHANGE_CALL[flow]
    fake.inject(path, status=200, body=b"<html>gateway</html>")
    client = client_factory(make_settings(flow))
    response = login(client, fake, ZHANGSAN.unionid)
    assert response.status_code == 502
    assert call in response.text


def test_json_client_gets_json_errors(client_factory: ClientFactory) -> None:
    client = client_factory()
    response = client.get(
        "/dingtalk/callback?code=x&state=y", headers={"accept": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "state_unknown"


SAME_ORIGIN = {"origin": "http://testserver"}


def test_logout_clears_the_session(client_factory: ClientFactory, fake: FakeDingTalk) -> None:
    client = client_factory()
    login(client, fake, ZHANGSAN.unionid)
    assert client.get("/private").status_code == 200
    response = client.post("/dingtalk/logout?next=/bye", headers=SAME_ORIGIN)
    assert response.status_code == 302
    assert response.headers["location"] == "/bye"
    assert "Max-Age=0" in response.headers["set-cookie"]
    assert client.get("/private", headers=HTML).status_code == 302
    same_origin_get = client.get(
        "/dingtalk/logout?next=//evil.example", headers={"sec-fetch-site": "same-origin"}
    )
    assert same_origin_get.headers["location"] == "/"


def test_a_cookie_replayed_after_logout_is_refused(
    client_factory: ClientFactory, fake: FakeDingTalk
) -> None:
    client = client_factory()
    login(client, fake, ZHANGSAN.unionid)
    (session,) = (c for c in client.cookies.jar if c.name == "dingmw_session")
    assert client.post("/dingtalk/logout", headers=SAME_ORIGIN).status_code == 302
    client.cookies.set(session.name, session.value or "", path="/")
    replay = client.get("/private", headers={"accept": "application/json"})
    assert replay.status_code == 401
    assert replay.json()["error"] == "login_required"


@pytest.mark.parametrize(
    "next_path",
    ["//evil.example/x", "https://evil.example/", "/\\evil.example", "/%2F%2Fevil.example"],
)
def test_next_never_leaves_the_site(
    client_factory: ClientFactory, fake: FakeDingTalk, next_path: str
) -> None:
    client = client_factory()
    response = login(client, fake, ZHANGSAN.unionid, next_path=next_path)
    assert response.status_code == 302
    assert response.headers["location"] == "/"


def test_allow_list_refuses_with_403_and_no_session(
    client_factory: ClientFactory, fake: FakeDingTalk, flow: str
) -> None:
    client = client_factory(make_settings(flow, allowed_users=frozenset({LISI.unionid})))
    refused = login(client, fake, ZHANGSAN.unionid)
    assert refused.status_code == 403
    assert ZHANGSAN.nick in refused.text
    assert ZHANGSAN.unionid in refused.text  # what to give the administrator
    assert "dingmw_session=" not in ";".join(refused.headers.get_list("set-cookie"))
    assert client.get("/private", headers=HTML).status_code == 302
    assert login(client, fake, LISI.unionid).status_code == 302


def test_app_token_is_fetched_once_for_many_logins(
    client_factory: ClientFactory, fake: FakeDingTalk
) -> None:
    for unionid in (ZHANGSAN.unionid, LISI.unionid, OUTSIDER.unionid):
        client = client_factory(make_settings("sns"))
        assert login(client, fake, unionid).status_code == 302
    # Each factory call is a new middleware with its own memory store...
    assert fake.calls["/sns/gettoken"] == 3
    shared = client_factory(make_settings("sns"))
    for unionid in (ZHANGSAN.unionid, LISI.unionid):
        shared.cookies.clear()
        assert login(shared, fake, unionid).status_code == 302
    # ...but within one middleware the token is cached.
    assert fake.calls["/sns/gettoken"] == 4


def test_expired_app_token_is_refreshed_once(
    client_factory: ClientFactory, fake: FakeDingTalk
) -> None:
    client = client_factory(make_settings("sns"))
    assert login(client, fake, ZHANGSAN.unionid).status_code == 302
    fake.inject("/sns/get_persistent_code", errcode=40014, message="不合法的access_token")
    client.cookies.clear()
    assert login(client, fake, LISI.unionid).status_code == 302
    assert fake.calls["/sns/gettoken"] == 2


def test_authorize_url_carries_the_state_and_callback(
    client_factory: ClientFactory, flow: str
) -> None:
    client = client_factory(make_settings(flow))
    config = start_login(client)
    query = parse_qs(urlsplit(config["authorize_url"]).query)
    assert query["state"] == [config["state"]]
    assert query["redirect_uri"] == ["http://testserver/dingtalk/callback"]
    assert config["flow"] == flow
    assert config["login_origin"] == "https://login.dingtalk.com"


def test_login_page_language(client_factory: ClientFactory) -> None:
    client = client_factory()
    zh = client.get("/dingtalk/login", headers={**HTML, "accept-language": "zh-CN,zh;q=0.9"})
    en = client.get("/dingtalk/login", headers={**HTML, "accept-language": "en-US,en;q=0.9"})
    assert "钉钉登录" in zh.text
    assert '<html lang="zh-CN">' in zh.text
    assert "Log in with DingTalk" in en.text
    assert '<html lang="en">' in en.text


def test_unknown_own_route_and_wrong_method(client_factory: ClientFactory) -> None:
    client = client_factory()
    assert client.get("/dingtalk/nope", headers=HTML).status_code == 404
    response = client.post("/dingtalk/login")
    assert response.status_code == 405
    assert "GET" in response.headers["allow"]


@pytest.mark.parametrize(
    "prefix", ["/a/../b", "/..%2f", "/a/%2e", "//evil.example", "/%2F%2Fevil.example", "evil"]
)
def test_a_bad_forwarded_prefix_is_refused_with_a_cached_session_too(
    client_factory: ClientFactory, fake: FakeDingTalk, prefix: str
) -> None:
    """The fast paths (a cached session, a public path) refuse it as the full one does."""
    client = client_factory(make_settings("oauth2", trust_proxy=True, public_paths=("/open",)))
    assert login(client, fake, ZHANGSAN.unionid).status_code == 302
    assert client.get("/private", headers={"x-forwarded-prefix": "/app"}).status_code == 200
    for _ in range(2):  # the first time, then with the session and the answer remembered
        for path in ("/private", "/open"):
            refused = client.get(path, headers={"x-forwarded-prefix": prefix})
            assert refused.status_code == 400, (path, refused.text)
            assert "bad_forwarded" in refused.text
    assert client.get("/private", headers={"x-forwarded-prefix": "/app"}).status_code == 200


def test_trusted_forwarded_prefix_is_used_everywhere(
    client_factory: ClientFactory, fake: FakeDingTalk
) -> None:
    """Behind a proxy that mounts the app at /app and strips the prefix."""
    client = client_factory(make_settings("oauth2", trust_proxy=True))
    proxy = {**HTML, "x-forwarded-prefix": "/app", "x-forwarded-proto": "https"}
    response = client.get("/private", headers=proxy)
    assert response.headers["location"] == "/app/dingtalk/login?next=/app/private"
    page = client.get("/dingtalk/login", params={"next": "/app/private"}, headers=proxy)
    config = page_config(page)
    assert config["redirect_uri"] == "https://testserver/app/dingtalk/callback"
    assert "Path=/app/dingtalk/" in page.headers["set-cookie"]
    assert "Secure" in page.headers["set-cookie"]
    # Untrusted, the same headers change nothing.
    untrusted = client_factory(make_settings("oauth2"))
    plain = untrusted.get("/private", headers=proxy)
    assert plain.headers["location"] == "/dingtalk/login?next=/private"
