"""Fixtures for the fake DingTalk's own wire-format tests."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote, urlencode

import httpx
import pytest

from dingmw.testing import DEFAULT_APP_KEY, FakeDingTalk

OAPI = "https://oapi.dingtalk.com"
API = "https://api.dingtalk.com"
LOGIN = "https://login.dingtalk.com"
CALLBACK = "http://127.0.0.1:8000/dingtalk/callback"


class Clock:
    """A settable clock (seconds)."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(clock: Clock) -> FakeDingTalk:
    return FakeDingTalk(clock=clock)


@pytest.fixture
def client(fake: FakeDingTalk) -> Iterator[httpx.Client]:
    with httpx.Client(transport=fake.transport()) as c:
        yield c


def oauth2_url(
    *,
    client_id: str = DEFAULT_APP_KEY,
    redirect_uri: str = CALLBACK,
    scope: str = "openid",
    state: str = "st4te",
    base: str = LOGIN,
    **extra: str,
) -> str:
    params = {
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "client_id": client_id,
        "scope": scope,
        "prompt": "consent",
        "state": state,
        **extra,
    }
    return base + "/oauth2/auth?" + urlencode(params, quote_via=quote)


def sns_url(
    *,
    appid: str = DEFAULT_APP_KEY,
    redirect_uri: str = CALLBACK,
    scope: str = "snsapi_login",
    state: str = "STATE",
    path: str = "/connect/oauth2/sns_authorize",
    base: str = OAPI,
) -> str:
    return (
        f"{base}{path}?appid={appid}&response_type=code&scope={scope}&state={state}"
        f"&redirect_uri={quote(redirect_uri, safe='')}"
    )


def param(location: str, name: str) -> str:
    value: str | None = httpx.URL(location).params.get(name)
    assert value is not None, f"{name} missing from {location}"
    return value
