"""Shared fixtures (helpers live in tests/support.py)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, expect, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from dingmw import Settings
from dingmw.testing import FakeDingTalk

from .servers import serve_asgi
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


# --- Real servers and a real browser (tests/test_browser.py, tests/test_cli.py) -------------

CHROMIUM = os.environ.get("CHROMIUM_PATH") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
# Waits are on conditions; these only bound how long a broken run hangs.
BROWSER_TIMEOUT_MS = 20_000
expect.set_options(timeout=BROWSER_TIMEOUT_MS)


@dataclass(frozen=True)
class FakeServer:
    """The fake DingTalk served over real HTTP: `url` is its origin (no trailing slash)."""

    url: str
    fake: FakeDingTalk


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeServer]:
    """`FakeDingTalk().asgi_app` on a free loopback port (one per test module)."""
    fake = FakeDingTalk()
    with serve_asgi(fake.asgi_app) as url:
        yield FakeServer(url=url, fake=fake)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """Debian's headless Chromium. Missing or broken, the browser tests fail: CI needs them."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"Chromium is required for the browser tests but {CHROMIUM} does not exist or is "
            "not executable: install Debian's `chromium` package (or set CHROMIUM_PATH). "
            "These tests are never skipped.",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
            )
        except PlaywrightError as exc:
            pytest.fail(f"Chromium at {CHROMIUM} did not start: {exc}", pytrace=False)
        try:
            yield browser
        finally:
            browser.close()


ContextFactory = Callable[..., BrowserContext]


@pytest.fixture
def context_factory(chromium: Browser) -> Iterator[ContextFactory]:
    """Fresh, in-memory browser contexts (no profile on disk), closed after the test."""
    contexts: list[BrowserContext] = []

    def factory(**kwargs: Any) -> BrowserContext:
        kwargs.setdefault("locale", "en-US")
        context = chromium.new_context(**kwargs)
        context.set_default_timeout(BROWSER_TIMEOUT_MS)
        contexts.append(context)
        return context

    yield factory
    for context in contexts:
        context.close()
