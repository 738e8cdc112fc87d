"""The fake DingTalk in a process of its own, every server-to-server call answered after a delay.

    uvicorn fake_dingtalk:app --app-dir bench   (BENCH_DELAY=0.05 seconds per call)

The delay (dingmw.testing's fault injection) applies to the calls a login makes from the
server (tokens, users/me, the topapi lookups), not to the pages a browser sees. One extra
route, `GET /_bench/calls`, answers how many times each path was called.
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from dingmw.testing import FakeDingTalk

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# Every call a login server makes to DingTalk (dingtalk-api.md §1-§4, §6.2).
SERVER_CALLS = (
    "/gettoken",
    "/topapi/user/getbyunionid",
    "/topapi/v2/user/get",
    "/topapi/v2/user/getuserinfo",
    "/v1.0/oauth2/userAccessToken",
    "/v1.0/contact/users/me",
    "/sns/gettoken",
    "/sns/get_persistent_code",
    "/sns/get_sns_token",
    "/sns/getuserinfo",
    "/sns/getuserinfo_bycode",
)
FOREVER = 10**9


def build(delay: float) -> tuple[FakeDingTalk, Callable[[Scope, Receive, Send], Awaitable[None]]]:
    fake = FakeDingTalk()
    if delay > 0:
        for path in SERVER_CALLS:
            fake.inject(path, delay=delay, times=FOREVER)
    inner = fake.asgi_app

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/_bench/calls":
            body = json.dumps(dict(fake.calls)).encode()
            headers = [(b"content-type", b"application/json")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await inner(scope, receive, send)

    return fake, app


fake, app = build(float(os.environ.get("BENCH_DELAY", "0")))
