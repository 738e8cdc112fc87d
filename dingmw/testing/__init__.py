"""A faithful fake of DingTalk's side, for tests, ``dingmw demo`` and your own apps.

It speaks what ``oapi.dingtalk.com``, ``api.dingtalk.com`` and ``login.dingtalk.com``
speak (paths do not collide, so one app serves all three)::

    from dingmw.testing import FakeDingTalk, ZHANGSAN

    fake = FakeDingTalk()
    client = httpx.Client(transport=fake.transport())   # or httpx.AsyncClient
    location = fake.scan(authorize_url, ZHANGSAN.unionid)  # "redirect_uri?authCode=..&state=.."
    uvicorn.run(fake.asgi_app, port=8765)                 # or dingmw.testing.serve()

    login_as(client, ZHANGSAN)   # a valid session for a person, in a user's own test

The fake shares no code with the rest of dingmw on purpose: it is written
from DingTalk's documentation alone, so a wrong field name cannot hide on
both sides. `login_as` (in `login.py`) is the exception: it issues a session
with the middleware's own `Sessions`, exactly as a real login would.
"""

from .directory import (
    DEFAULT_APP_KEY,
    DEFAULT_APP_SECRET,
    DEFAULT_CORP_ID,
    LISI,
    OUTSIDER,
    ZHANGSAN,
    FakeApp,
    FakeUser,
)
from .fake import FakeDingTalk, RecordedRequest, ScanError, serve
from .login import SessionCookie, identity_of, login_as
from .oapi import signature_of

__all__ = [
    "DEFAULT_APP_KEY",
    "DEFAULT_APP_SECRET",
    "DEFAULT_CORP_ID",
    "LISI",
    "OUTSIDER",
    "ZHANGSAN",
    "FakeApp",
    "FakeDingTalk",
    "FakeUser",
    "RecordedRequest",
    "ScanError",
    "SessionCookie",
    "identity_of",
    "login_as",
    "serve",
    "signature_of",
]
