"""`/dingtalk/readyz` follows the store: 503 soon after Redis stops or hangs, 200 when back;
on the middleware (both adapters) and on the hub."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import httpx
import pytest

from dingmw.cli import main
from dingmw.config import HubClient
from dingmw.core.health import READY_TIMEOUT
from dingmw.hub import create_app
from dingmw.testing import DEFAULT_APP_KEY, DEFAULT_APP_SECRET, FakeDingTalk

from ..conftest import FakeServer
from ..redis_server import RedisServer
from ..support import TestClient, build_client, make_settings

pytestmark = pytest.mark.redis

# What "soon" means: the probe's own timeout plus room for a loaded machine.
SOON = READY_TIMEOUT + 3.0


def wait_for(condition: Callable[[], bool], timeout: float) -> float:
    """Poll `condition` until it holds; the seconds it took."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout} s")
    return time.monotonic() - start


def status(client: httpx.Client) -> int:
    return client.get("/dingtalk/readyz").status_code


def test_readyz_follows_redis(adapter: str, fake: FakeDingTalk, private_redis: RedisServer) -> None:
    client = build_client(adapter, make_settings(store_url=private_redis.url), fake)
    with client:
        assert status(client) == 200
        private_redis.stop()
        assert wait_for(lambda: status(client) == 503, SOON) < SOON
        down = client.get("/dingtalk/readyz")
        assert down.json() == {"status": "unavailable", "down": ["store"]}
        assert "127.0.0.1" not in down.text
        assert str(private_redis.port) not in down.text
        assert private_redis.password is not None
        assert private_redis.password not in down.text
        assert client.get("/dingtalk/healthz").status_code == 200  # alive, just not ready
        private_redis.start()
        wait_for(lambda: status(client) == 200, SOON)


def test_readyz_gives_up_on_a_redis_that_hangs(
    adapter: str, fake: FakeDingTalk, private_redis: RedisServer
) -> None:
    """A frozen Redis accepts connections and never answers: the probe still ends, in time."""
    client = build_client(adapter, make_settings(store_url=private_redis.url), fake)
    assert private_redis.process is not None
    pid = private_redis.process.pid
    with client:
        assert status(client) == 200
        os.kill(pid, signal.SIGSTOP)
        try:
            start = time.monotonic()
            assert status(client) == 503
            assert time.monotonic() - start < SOON
            assert client.get("/dingtalk/healthz").status_code == 200
        finally:
            os.kill(pid, signal.SIGCONT)
        wait_for(lambda: status(client) == 200, SOON)


def hub_client(fake: FakeDingTalk, store_url: str) -> TestClient:
    clients = (
        HubClient(
            client_id="site-a",
            client_secret="site-a-secret-0123456789",
            redirect_urls=("http://site-a.test/dingtalk/callback",),
        ),
    )
    settings = make_settings("oauth2", hub_clients=clients, store_url=store_url)
    hub = create_app(settings, transport=fake.transport())
    return TestClient(hub, base_url="http://hub.test", follow_redirects=False)


def test_the_hub_has_the_same_probes(fake: FakeDingTalk, private_redis: RedisServer) -> None:
    with hub_client(fake, private_redis.url) as client:
        assert client.get("/dingtalk/healthz").json() == {"status": "ok"}
        assert client.get("/dingtalk/readyz").json() == {"status": "ok", "store": "ok"}
        assert client.head("/dingtalk/readyz").status_code == 200
        private_redis.stop()
        assert wait_for(lambda: status(client) == 503, SOON) < SOON
        down = client.get("/dingtalk/readyz")
        assert down.json() == {"status": "unavailable", "down": ["store"]}
        assert str(private_redis.port) not in down.text
        assert client.get("/dingtalk/healthz").status_code == 200
        assert client.get("/healthz").status_code == 200  # the hub's older probe stays
        private_redis.start()
        wait_for(lambda: status(client) == 200, SOON)


def test_check_live_pings_the_store(
    fake_server: FakeServer,
    private_redis: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in [n for n in os.environ if n.startswith("DINGMW_")]:
        monkeypatch.delenv(name)
    values = {
        "DINGMW_APP_KEY": DEFAULT_APP_KEY,
        "DINGMW_APP_SECRET": DEFAULT_APP_SECRET,
        "DINGMW_SECRET_KEY": "a-signing-key-for-the-check-0123456789abcdef",
        "DINGMW_API_URL": fake_server.url,
        "DINGMW_STORE_URL": private_redis.url,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    assert main(["check", "--live"]) == 0
    out = capsys.readouterr().out
    assert f"store: redis://127.0.0.1:{private_redis.port}/0 answers" in out
    assert out.rstrip().endswith("live check OK")
    assert private_redis.password is not None
    assert private_redis.password not in out
    private_redis.stop()
    assert main(["check", "--live"]) == 3
    err = capsys.readouterr().err
    assert "store_unavailable: Redis PING unreachable" in err
    assert private_redis.password not in err


@pytest.mark.parametrize("topology", ["sentinel", "cluster"])
def test_readyz_behind_sentinel_and_cluster(
    topology: str, adapter: str, fake: FakeDingTalk, request: pytest.FixtureRequest
) -> None:
    setup = request.getfixturevalue(f"redis_{topology}")
    client = build_client(adapter, make_settings(store_url=setup.url), fake)
    with client:
        assert client.get("/dingtalk/readyz").json() == {"status": "ok", "store": "ok"}
