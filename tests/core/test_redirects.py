"""Where a browser may be sent (safe_next) and this site's public URL (external_base, is_https)."""

from __future__ import annotations

import pytest

from dingmw.core.redirects import MAX_NEXT_LENGTH, external_base, is_https, safe_next
from dingmw.errors import BadRequestError

from .helpers import make_core, make_settings, page_context, responded, web_request


@pytest.mark.parametrize(
    "raw",
    [
        "/",
        "/a/b?x=1",
        "/a/b?x=1&y=2",
        "/a;b=c",
        "/search?q=a+b",
        "/search?q=a%20b",
        "/files/report%202024.pdf",
        "/discount?p=50%25",
        "/http://not-a-scheme-here",
        "/?next=//evil.com",
        "/" + "a" * (MAX_NEXT_LENGTH - 1),
    ],
)
def test_safe_next_accepts_same_site_paths(raw: str) -> None:
    assert safe_next(raw) == raw


@pytest.mark.parametrize(
    ("raw", "location"),
    [
        ("/中文", "/%E4%B8%AD%E6%96%87"),
        ("/a b?q=x y", "/a%20b?q=x%20y"),
        ("/ /evil.com", "/%20/evil.com"),  # a path segment, not a host
    ],
)
def test_safe_next_encodes_what_a_location_header_cannot_hold(raw: str, location: str) -> None:
    assert safe_next(raw) == location


def test_safe_next_drops_the_fragment() -> None:
    assert safe_next("/page#section") == "/page"


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("//evil.com", id="scheme-relative"),
        pytest.param("///evil.com", id="triple-slash"),
        pytest.param("/\\evil.com", id="slash-backslash"),
        pytest.param("\\\\evil.com", id="double-backslash"),
        pytest.param("\\/evil.com", id="backslash-slash"),
        pytest.param("https://evil.com", id="absolute-https"),
        pytest.param("http:evil.com", id="scheme-no-slashes"),
        pytest.param("javascript:alert(1)", id="javascript"),
        pytest.param("JavaScript:alert(1)", id="javascript-case"),
        pytest.param("data:text/html,<script>", id="data"),
        pytest.param("/%2F%2Fevil.com", id="encoded-slashes"),
        pytest.param("/%2f%2fevil.com", id="encoded-slashes-lower"),
        pytest.param("/%5Cevil.com", id="encoded-backslash"),
        pytest.param("%2F%2Fevil.com", id="fully-encoded"),
        pytest.param("/%252F%252Fevil.com", id="double-encoded"),
        pytest.param("/%25252F%25252Fevil.com", id="triple-encoded"),
        pytest.param("/\t/evil.com", id="tab"),
        pytest.param("/%09/evil.com", id="encoded-tab"),
        pytest.param(" /a", id="leading-space"),
        pytest.param("/a\r\nSet-Cookie: x=1", id="crlf"),
        pytest.param("/a%0d%0aSet-Cookie:%20x=1", id="encoded-crlf"),
        pytest.param("/a\nb", id="lf"),
        pytest.param("/a\x00b", id="nul"),
        pytest.param("/a%00b", id="encoded-nul"),
        pytest.param("/a\x7fb", id="del"),
        pytest.param("/" + "a" * MAX_NEXT_LENGTH, id="too-long"),
        pytest.param("relative/path", id="relative"),
        pytest.param("evil.com", id="bare-host"),
        pytest.param("", id="empty"),
        pytest.param(None, id="none"),
        pytest.param("//[x/", id="unclosed-ipv6-host"),
    ],
)
def test_safe_next_rejects(raw: str | None) -> None:
    assert safe_next(raw) is None


@pytest.mark.parametrize("next_url", ["http://[x/", "https://[::1/a", "http://[/"])
def test_a_next_url_urlsplit_cannot_split_sends_home(next_url: str) -> None:
    """`urlsplit` raises on an unclosed `[`: a link anyone can post, never a 500."""
    core = make_core()
    response = responded(core.decide(web_request("/dingtalk/login", query=f"next={next_url}")))
    assert response.status == 200  # the login page, its `next` home
    assert "http://[" not in response.body.decode()


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_referer_urlsplit_cannot_split_is_not_same_origin(method: str) -> None:
    core = make_core()
    request = web_request("/dingtalk/logout", method=method, headers={"referer": "http://[x"})
    response = responded(core.decide(request))
    assert response.status == (200 if method == "GET" else 403)  # the confirm page; refused


# external_base ---------------------------------------------------------------

FORWARDED = {
    "x-forwarded-proto": "https",
    "x-forwarded-host": "public.example",
    "x-forwarded-prefix": "/portal",
}


def test_external_base_from_the_request() -> None:
    req = web_request("/x", scheme="http", host="app.example:8080", root_path="/app")
    assert external_base(req, make_settings()) == "http://app.example:8080/app"


def test_forwarded_headers_are_ignored_unless_trusted() -> None:
    req = web_request("/x", host="internal:8000", headers=FORWARDED)
    assert external_base(req, make_settings()) == "http://internal:8000"
    assert not is_https(req, make_settings())


def test_forwarded_headers_count_when_trusted() -> None:
    req = web_request("/x", host="internal:8000", headers=FORWARDED)
    settings = make_settings(trust_proxy=True)
    assert external_base(req, settings) == "https://public.example/portal"
    assert is_https(req, settings)


def test_first_forwarded_value_wins() -> None:
    req = web_request(
        "/x",
        host="internal",
        headers={"x-forwarded-proto": "https, http", "x-forwarded-host": "a.example, b.example"},
    )
    assert external_base(req, make_settings(trust_proxy=True)) == "https://a.example"


def test_base_url_overrides_everything() -> None:
    req = web_request("/x", host="internal:8000", root_path="/ignored", headers=FORWARDED)
    settings = make_settings(base_url="https://sso.example/sub", trust_proxy=True)
    assert external_base(req, settings) == "https://sso.example/sub"
    config = page_context(
        responded(
            make_core(base_url="https://sso.example/sub").decide(
                web_request("/dingtalk/login", host="internal:8000")
            )
        )
    )["config"]
    assert config["redirect_uri"] == "https://sso.example/sub/dingtalk/callback"


@pytest.mark.parametrize(
    "host",
    ["evil.com/path", "a b", "evil.com@good.com", "good.com\\evil", "", "h:99999999", "<x>"],
)
def test_bad_host_raises(host: str) -> None:
    with pytest.raises(BadRequestError) as info:
        external_base(web_request("/x", host=host), make_settings())
    assert info.value.reason == "bad_host"


@pytest.mark.parametrize("host", ["example.com", "example.com:8443", "127.0.0.1:8000", "[::1]:80"])
def test_good_hosts(host: str) -> None:
    assert external_base(web_request("/x", host=host), make_settings()) == f"http://{host}"


@pytest.mark.parametrize(
    "forwarded",
    [
        {"x-forwarded-proto": "javascript"},
        {"x-forwarded-host": "evil.com/x"},
        {"x-forwarded-prefix": "//evil.com"},
        {"x-forwarded-prefix": "/a b"},
    ],
)
def test_bad_forwarded_values_raise_when_trusted(forwarded: dict[str, str]) -> None:
    with pytest.raises(BadRequestError):
        external_base(web_request("/x", headers=forwarded), make_settings(trust_proxy=True))


def test_bad_host_on_the_login_page_is_a_400_page() -> None:
    core = make_core()
    response = responded(core.decide(web_request("/dingtalk/login", host="evil.com/x")))
    assert response.status == 400
    assert page_context(response)["reason"] == "bad_host"


# is_https ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("secure", "scheme", "expected"),
    [
        ("auto", "https", True),
        ("auto", "http", False),
        ("true", "http", True),
        ("true", "https", True),
        ("false", "https", False),
        ("false", "http", False),
    ],
)
def test_is_https_follows_cookie_secure(secure: str, scheme: str, expected: bool) -> None:
    req = web_request("/x", scheme=scheme)
    assert is_https(req, make_settings(cookie_secure=secure)) is expected


def test_is_https_auto_uses_base_url() -> None:
    req = web_request("/x", scheme="http")
    assert is_https(req, make_settings(base_url="https://sso.example"))
    assert not is_https(web_request("/x", scheme="https"), make_settings(base_url="http://a.b"))


def test_is_https_auto_trusts_forwarded_proto_only_when_told() -> None:
    req = web_request("/x", scheme="http", headers={"x-forwarded-proto": "https"})
    assert not is_https(req, make_settings())
    assert is_https(req, make_settings(trust_proxy=True))
    back = web_request("/x", scheme="https", headers={"x-forwarded-proto": "http"})
    assert not is_https(back, make_settings(trust_proxy=True))
