"""Shared fixtures (helpers live in tests/support.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dingmw import Settings
from dingmw.testing import FakeDingTalk

from .support import ADAPTERS, ClientFactory, build_client, make_settings


@pytest.fixture
def fake() -> FakeDingTalk:
    return FakeDingTalk()


@pytest.fixture(params=ADAPTERS)
def adapter(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture
def client_factory(adapter: str, fake: FakeDingTalk) -> Iterator[ClientFactory]:
    clients: list[httpx.Client] = []

    def factory(settings: Settings | None = None, **kwargs: Any) -> httpx.Client:
        client: httpx.Client = build_client(adapter, settings or make_settings(), fake, **kwargs)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.close()
