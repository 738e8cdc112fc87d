"""Identity-like request headers from a client never reach the wrapped app, under either
adapter (in process; `tests/test_real_servers.py` does the same through real servers)."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from dingmw import ASGIMiddleware, Identity, WSGIMiddleware
from dingmw.spoofing import IdentityHeaders

from .support import TestClient, make_settings

PERSON = Identity(unionid="u-spoof", userid="spoofer", flow="oauth2")
SPOOFED = {
    "X-DingTalk-UnionId": "u-admin",
    "x-dingtalk-anything": "1",
    "Remote-User": "root",
    "X-Remote-User": "root",
    "X-Forwarded-User": "root",
    "X-Forwarded-Email": "root@example.com",
    "X-Forwarded-Preferred-Username": "root",
    "X-Auth-Request-User": "root",  # named in strip_headers below
}
KEPT = {"X-Forwarded-For": "10.0.0.1", "X-Request-Id": "abc", "Referer": "http://testserver/"}


def echo_asgi() -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        import json

        names = sorted(name.decode() for name, _ in scope["headers"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": json.dumps(names).encode()})

    return app


def echo_wsgi(environ: Any, start_response: Any) -> list[bytes]:
    import json

    names = sorted(k for k in environ if k.startswith("HTTP_"))
    start_response("200 OK", [])
    return [json.dumps([names, environ.get("REMOTE_USER")]).encode()]


@pytest.mark.parametrize("adapter", ["asgi", "wsgi"])
def test_identity_headers_are_removed_and_logged_at_debug(
    adapter: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(public_paths=("/public",), strip_headers=("X-Auth-Request-User",))
    if adapter == "asgi":
        mw: Any = ASGIMiddleware(echo_asgi(), settings)
        client: httpx.Client = TestClient(mw, base_url="http://testserver")
    else:
        mw = WSGIMiddleware(echo_wsgi, settings)
        client = httpx.Client(transport=httpx.WSGITransport(app=mw), base_url="http://testserver")
    cookie = mw.core.sessions.issue(PERSON, secure=False).split(";", 1)[0]
    with caplog.at_level(logging.DEBUG, logger="dingmw"):
        private = client.get("/private", headers={**SPOOFED, **KEPT, "cookie": cookie}).json()
        public = client.get("/public", headers={**SPOOFED, **KEPT}).json()
    assert "removed client-sent identity headers" in caplog.text
    for seen in (private, public):
        names = seen if adapter == "asgi" else seen[0]
        text = " ".join(names).lower().replace("_", "-")
        for header in SPOOFED:
            assert header.lower() not in text, f"{header} reached the app"
        for header in KEPT:
            assert header.lower() in text, f"{header} was removed"
    if adapter == "wsgi":
        assert private[1] == "spoofer"
        assert public[1] is None


def test_the_screen_and_the_exact_test_agree() -> None:
    headers = IdentityHeaders(("X-Auth-Request-User",))
    for name in (
        b"x-dingtalk-unionid",
        b"remote-user",
        b"remote_user",
        b"X-Forwarded-User",
        b"x-auth-request-user",
        b"x_dingtalk_userid",
    ):
        assert headers.match(name), name
        assert headers.scan([(name, b"v")])[1], name
    for name in (b"x-forwarded-for", b"x-request-id", b"referer", b"remote-addr", b"cookie"):
        assert not headers.match(name), name
        assert not headers.scan([(name, b"v")])[1], name


def test_the_environ_screen_finds_every_identity_key_and_nothing_else() -> None:
    headers = IdentityHeaders(("X-Auth-Request-User",))
    plain = {
        "wsgi.input": object(),
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/",
        "HTTP_HOST": "a.example",
        "HTTP_COOKIE": "a=1",
        "HTTP_X_FORWARDED_FOR": "10.0.0.1",
        "HTTP_X_DINGTALKISH": "not the prefix",
        "XHTTP_X_DINGTALK_UNIONID": "not at the start",
    }
    assert not headers.environ_spoofed(plain)
    for key in (
        "HTTP_X_DINGTALK_UNIONID",
        "HTTP_REMOTE_USER",
        "HTTP_X_FORWARDED_EMAIL",
        "HTTP_X_AUTH_REQUEST_USER",
        "REMOTE_USER",
    ):
        assert headers.environ_spoofed({**plain, key: "root"}), key
    # A key that is not a str (against PEP 3333) is screened rather than crashing.
    assert not headers.environ_spoofed({**plain, 1: "x"})  # type: ignore[dict-item]
    assert headers.environ_spoofed({1: "x", "HTTP_X_DINGTALK_USERID": "root"})  # type: ignore[dict-item]
