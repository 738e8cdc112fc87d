"""A pytest plugin for testing your own app behind dingmw. Enable it in `conftest.py`:

    pytest_plugins = ["dingmw.testing.pytest_plugin"]

Fixtures:

* `fake_dingtalk`: a fresh `FakeDingTalk` (pass `fake_dingtalk.transport()` to the middleware
  to log in through the fake's pages);
* `dingmw_settings`: `Settings` for the fake's app, with a test signing key;
* `dingmw_env`: the same as `DINGMW_*` environment variables (for apps that read them,
  like `WSGIMiddleware(app)` or an app factory), set for the test and removed after it;
* `login_as`: `dingmw.testing.login_as`, so a test logs a person in with one line:
  `login_as(client, ZHANGSAN)`.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from typing import Any

import pytest

from ..config import Settings
from . import DEFAULT_APP_KEY, DEFAULT_APP_SECRET, FakeDingTalk
from .login import login_as as _login_as


@pytest.fixture
def fake_dingtalk() -> FakeDingTalk:
    return FakeDingTalk()


@pytest.fixture
def dingmw_settings() -> Settings:
    return Settings(
        app_key=DEFAULT_APP_KEY,
        app_secret=DEFAULT_APP_SECRET,
        secret_keys=(secrets.token_urlsafe(48),),
    )


@pytest.fixture
def dingmw_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name in [n for n in os.environ if n.startswith("DINGMW_")]:
        monkeypatch.delenv(name)
    values = {
        "DINGMW_APP_KEY": DEFAULT_APP_KEY,
        "DINGMW_APP_SECRET": DEFAULT_APP_SECRET,
        "DINGMW_SECRET_KEY": secrets.token_urlsafe(48),
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


@pytest.fixture
def login_as() -> Callable[..., Any]:
    return _login_as
