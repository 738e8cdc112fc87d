"""Routing decisions (core/routes.py, core/flow.py): who gets through, who is sent to log in."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from dingmw.core.flow import Core
from dingmw.core.outcome import Forward, Respond
from dingmw.identity import Identity

from .helpers import (
    Browser,
    Clock,
    body_json,
    header,
    location_query,
    make_core,
    page,
    page_context,
    responded,
    set_cookies,
    settled,
    settled_response,
    web_request,
)

HTML = "text/html,application/xhtml+xml,*/*;q=0.8"
ZHANGSAN = Identity(unionid="u-zhangsan", userid="zhangsan", name="张三", flow="oauth2")


SAME_ORIGIN = {"sec-fetch-site": "same-origin"}


def session_cookie(core: Core, identity: Identity = ZHANGSAN, *, secure: bool = False) -> str:
    raw = core.sessions.issue(identity, secure=secure)
    name, _, value = raw.split(";", 1)[0].partition("=")
    assert name == core.settings.cookie_name
    return value


def logged_in(core: Core) -> dict[str, str]:
    return {core.settings.cookie_name: session_cookie(core)}


# Anonymous requests to protected paths -------------------------------------


@pytest.mark.parametrize(
    ("path", "query", "expected_next"),
    [
        ("/", "", "/"),
        ("/reports", "", "/reports"),
        ("/reports/2024", "year=2024&q=x", "/reports/2024?year=2024&q=x"),
        ("/search", "q=hello%20world", "/search?q=hello%20world"),
    ],
)
def test_browser_navigation_is_redirected_to_login(
    path: str, query: str, expected_next: str
) -> None:
    core = make_core()
    for method in ("GET", "HEAD"):
        response = responded(core.decide(web_request(path, method=method, query=query)))
        assert response.status == 302
        login_path, params = location_query(response)
        assert login_path == "/dingtalk/login"
        assert params == {"next": [expected_next]}
        assert header(response, "cache-control") == "no-store"


@pytest.mark.parametrize(
    ("method", "accept"),
    [
        ("GET", "application/json"),
        ("GET", "*/*"),
        ("GET", None),
        ("POST", HTML),
        ("DELETE", HTML),
    ],
)
def test_api_call_gets_401_json(method: str, accept: str | None) -> None:
    core = make_core()
    response = responded(
        core.decide(web_request("/api/items", method=method, query="page=2", accept=accept))
    )
    assert response.status == 401
    assert body_json(response) == {
        "error": "login_required",
        "login_url": "/dingtalk/login?next=/api/items%3Fpage%3D2",
    }


def test_valid_session_forwards_with_identity() -> None:
    core = make_core()
    decision = core.decide(web_request("/reports", cookies=logged_in(core)))
    assert decision == Forward(ZHANGSAN)


def test_forged_session_is_treated_as_anonymous() -> None:
    core = make_core()
    value = session_cookie(core)
    forged = value[:-2] + ("AA" if not value.endswith("AA") else "BB")
    response = responded(
        core.decide(web_request("/reports", cookies={core.settings.cookie_name: forged}))
    )
    assert response.status == 302


# Public paths --------------------------------------------------------------

PUBLIC = ("/health", "/static/*")


@pytest.mark.parametrize("path", ["/health", "/static/", "/static/app.css", "/static/a/b.js"])
def test_public_paths_pass_anonymously(path: str) -> None:
    core = make_core(public_paths=PUBLIC)
    assert core.decide(web_request(path, accept="application/json")) == Forward(None)


def test_public_paths_still_get_the_identity_of_a_session() -> None:
    core = make_core(public_paths=PUBLIC)
    assert core.decide(web_request("/health", cookies=logged_in(core))) == Forward(ZHANGSAN)
    assert core.decide(web_request("/static/x.js", cookies=logged_in(core))) == Forward(ZHANGSAN)


@pytest.mark.parametrize(
    "path",
    [
        "/static/../admin",
        "/static/./admin",
        "/static/..",
        "/static//admin",
        "/static/a/../../admin",
        "/health/",
        "/healthz",
        "/health/../admin",
        "/static",
        "/admin/static/x",
    ],
)
def test_not_public(path: str) -> None:
    core = make_core(public_paths=PUBLIC)
    response = responded(core.decide(web_request(path)))
    assert response.status == 302
    assert location_query(response)[0] == "/dingtalk/login"


def test_public_path_pattern_ignores_the_query() -> None:
    core = make_core(public_paths=("/health",))
    assert core.decide(web_request("/health", query="x=/admin")) == Forward(None)
    response = responded(core.decide(web_request("/admin", query="p=/health")))
    assert response.status == 302


# The middleware's own routes ------------------------------------------------


def test_custom_path_prefix() -> None:
    core = make_core(path_prefix="/sso")
    response = responded(core.decide(web_request("/private")))
    login_path, params = location_query(response)
    assert login_path == "/sso/login"
    assert params == {"next": ["/private"]}
    # The login page lives under the new prefix; the default one is just an app path.
    assert responded(core.decide(web_request("/sso/login"))).status == 200
    assert responded(core.decide(web_request("/dingtalk/login"))).status == 302
    config = page_context(responded(core.decide(web_request("/sso/login"))))["config"]
    assert config["redirect_uri"] == "http://app.example/sso/callback"


def test_prefix_must_match_a_whole_segment() -> None:
    core = make_core()
    response = responded(core.decide(web_request("/dingtalkx/login")))
    assert response.status == 302  # the app's path, protected


def test_root_path_of_a_mounted_app_is_honoured() -> None:
    core = make_core()
    response = responded(core.decide(web_request("/reports", root_path="/app", query="a=1")))
    login_path, params = location_query(response)
    assert login_path == "/app/dingtalk/login"
    assert params == {"next": ["/app/reports?a=1"]}

    browser = Browser(core, root_path="/app")
    login = responded(browser.get("/dingtalk/login", "next=/app/reports"))
    config = page_context(login)["config"]
    assert config["redirect_uri"] == "http://app.example/app/dingtalk/callback"
    (state_cookie,) = set_cookies(login).values()
    assert state_cookie.attrs["path"] == "/app/dingtalk/"

    logout_request = web_request("/dingtalk/logout", root_path="/app", headers=SAME_ORIGIN)
    logout = responded(core.decide(logout_request))
    assert header(logout, "location") == "/app/"

    me = responded(core.decide(web_request("/dingtalk/me", root_path="/app")))
    assert body_json(me)["login_url"] == "/app/dingtalk/login"


@pytest.mark.parametrize("path", ["/dingtalk", "/dingtalk/", "/dingtalk/nope", "/dingtalk/login/"])
def test_unknown_route_under_the_prefix_is_404(path: str) -> None:
    core = make_core()
    response = responded(core.decide(web_request(path)))
    assert response.status == 404
    assert page_context(response)["reason"] == "not_found"


@pytest.mark.parametrize(
    ("path", "method", "allow"),
    [
        ("/dingtalk/login", "POST", "GET, HEAD"),
        ("/dingtalk/callback", "POST", "GET"),
        ("/dingtalk/callback", "HEAD", "GET"),  # a HEAD must not spend the one-time state
        ("/dingtalk/me", "DELETE", "GET, HEAD"),
        ("/dingtalk/auth", "PUT", "GET, HEAD"),
        ("/dingtalk/logout", "PUT", "GET, HEAD, POST"),
    ],
)
def test_wrong_method_is_405_with_allow(path: str, method: str, allow: str) -> None:
    core = make_core()
    response = responded(core.decide(web_request(path, method=method)))
    assert response.status == 405
    assert header(response, "allow") == allow


def test_me_returns_the_identity_json() -> None:
    core = make_core()
    response = responded(core.decide(web_request("/dingtalk/me", cookies=logged_in(core))))
    assert response.status == 200
    assert body_json(response) == ZHANGSAN.to_dict()
    assert header(response, "cache-control") == "no-store"


def test_me_without_session_is_401_json() -> None:
    core = make_core()
    response = responded(core.decide(web_request("/dingtalk/me")))
    assert response.status == 401
    assert body_json(response) == {"error": "login_required", "login_url": "/dingtalk/login"}


def test_auth_is_204_with_identity_headers() -> None:
    core = make_core()
    response = responded(core.decide(web_request("/dingtalk/auth", cookies=logged_in(core))))
    assert response.status == 204
    assert response.body == b""
    assert header(response, "x-dingtalk-unionid") == "u-zhangsan"
    assert header(response, "x-dingtalk-userid") == "zhangsan"


def test_auth_without_userid_sends_only_the_unionid() -> None:
    core = make_core()
    cookies = {core.settings.cookie_name: session_cookie(core, Identity(unionid="u-only"))}
    response = responded(core.decide(web_request("/dingtalk/auth", cookies=cookies)))
    assert response.status == 204
    assert header(response, "x-dingtalk-unionid") == "u-only"
    assert header(response, "x-dingtalk-userid") is None


def test_auth_without_session_is_401() -> None:
    core = make_core()
    response = responded(core.decide(web_request("/dingtalk/auth")))
    assert response.status == 401
    assert header(response, "x-dingtalk-unionid") is None


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(
    ("query", "target"),
    [
        ("", "/"),
        ("next=/bye", "/bye"),
        ("next=//evil.com", "/"),
        ("next=https://evil.com/", "/"),
        ("next=/%5Cevil.com", "/"),
    ],
)
def test_logout_clears_the_session(method: str, query: str, target: str) -> None:
    core = make_core()
    response = settled_response(
        core.decide(
            web_request(
                "/dingtalk/logout",
                method=method,
                query=query,
                cookies=logged_in(core),
                headers=SAME_ORIGIN,
            )
        )
    )
    assert response.status == 302
    assert header(response, "location") == target
    cookie = set_cookies(response)["dingmw_session"]
    assert cookie.value == ""
    assert cookie.attrs["max-age"] == "0"
    assert cookie.attrs["path"] == "/"
    assert "httponly" in cookie.attrs


def test_logout_over_https_clears_a_secure_cookie() -> None:
    core = make_core()
    request = web_request("/dingtalk/logout", scheme="https", headers=SAME_ORIGIN)
    response = responded(core.decide(request))
    assert "secure" in set_cookies(response)["dingmw_session"].attrs


def test_login_page_when_logged_in_redirects_to_next() -> None:
    core = make_core()
    response = responded(
        core.decide(web_request("/dingtalk/login", query="next=/reports", cookies=logged_in(core)))
    )
    assert response.status == 302
    assert header(response, "location") == "/reports"
    assert set_cookies(response) == {}


def test_login_page_when_logged_in_refuses_an_offsite_next() -> None:
    core = make_core()
    response = responded(
        core.decide(
            web_request("/dingtalk/login", query="next=//evil.com", cookies=logged_in(core))
        )
    )
    assert header(response, "location") == "/"


def test_redirect_to_a_non_ascii_next_is_a_valid_header() -> None:
    """HTTP header values are bytes; `Location` must be a URI (percent-encoded), not an IRI."""
    core = make_core()
    response = responded(
        core.decide(
            web_request(
                "/dingtalk/login", query="next=/%E4%B8%AD%E6%96%87", cookies=logged_in(core)
            )
        )
    )
    location = header(response, "location")
    assert location is not None
    assert location.isascii(), location
    assert unquote(location) == "/中文"


def test_login_page_is_a_response_with_its_config() -> None:
    clock = Clock()
    core = make_core(clock)
    decision = core.decide(web_request("/dingtalk/login", query="next=/x"))
    assert isinstance(decision, Respond)
    response = decision.response
    assert response.status == 200
    assert header(response, "content-type") == "text/html; charset=utf-8"
    assert header(response, "cache-control") == "no-store"
    assert header(response, "x-frame-options") == "DENY"
    context = page_context(response)
    config = context["config"]
    assert config["flow"] == "oauth2"
    assert config["login_origin"] == "https://login.dingtalk.com"
    assert config["authorize_url"].startswith("https://login.dingtalk.com/oauth2/auth?")
    assert config["state"] in config["authorize_url"]
    assert context["next"] == "/x"
    assert b"app-secret" not in response.body


@pytest.mark.parametrize(
    ("accept_language", "lang"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        ("en-US,en;q=0.9", "en"),
        ("", "en"),
        ("fr-FR,en;q=0.5,zh;q=0.9", "zh"),
    ],
)
def test_pages_follow_accept_language(accept_language: str, lang: str) -> None:
    core = make_core()
    response = responded(
        core.decide(web_request("/dingtalk/login", headers={"accept-language": accept_language}))
    )
    assert page(response)["lang"] == lang


def test_a_public_path_gets_the_identity_of_a_session_not_cached_yet() -> None:
    cookie = session_cookie(make_core())  # issued by another instance: not in this one's cache
    core = make_core(public_paths=("/health",))
    name = core.settings.cookie_name
    assert core.quick("/health", f"{name}={cookie}") is None  # not answered from the cache
    assert core.quick("/health", "other=1") == Forward(None)
    result = settled(core.decide(web_request("/health", cookies={name: cookie})))
    assert isinstance(result, Forward)
    assert result.identity is not None
    assert result.identity.unionid == ZHANGSAN.unionid
