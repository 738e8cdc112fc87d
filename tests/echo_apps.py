"""Apps for the real-server tests: each answers what the wrapped app sees of the request.

`asgi_app` (uvicorn) and `wsgi_app` (gunicorn, werkzeug) are dingmw around an app whose
every path answers JSON: the identity dingmw forwarded, the request headers (lower case)
and, under WSGI, `REMOTE_USER`. `plain_asgi_app` is the same echo without dingmw (the
application behind nginx `auth_request`); `auth_service` is dingmw alone (the auth service).
Settings come from `DINGMW_*` in the environment.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import TYPE_CHECKING, Any

from dingmw import ASGIMiddleware, WSGIMiddleware, get_identity

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def _answer(identity: object, headers: dict[str, str], remote_user: str | None) -> bytes:
    data = {
        "unionid": getattr(identity, "unionid", None),
        # Values cut short: a test sends 10 MB cookies, which the answer need not carry.
        "headers": {name: value[:200] for name, value in headers.items()},
        "remote_user": remote_user,
    }
    return json.dumps(data).encode()


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    headers: dict[str, str] = {}
    for name, value in scope["headers"]:
        headers[name.decode("latin-1").lower()] = value[:200].decode("latin-1")
    body = _answer(scope.get("dingtalk.identity"), headers, None)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


def wsgi_echo(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    headers = {
        key[5:].replace("_", "-").lower(): str(value)
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    body = _answer(get_identity(environ), headers, environ.get("REMOTE_USER"))
    start_response("200 OK", [("content-type", "application/json")])
    return [body]


async def nothing(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 404, "headers": []})
    await send({"type": "http.response.body", "body": b"not found\n"})


asgi_app = ASGIMiddleware(echo)
wsgi_app = WSGIMiddleware(wsgi_echo)
plain_asgi_app = echo
auth_service = ASGIMiddleware(nothing)
