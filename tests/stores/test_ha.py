"""Redis high availability through the middleware: a real Sentinel setup and a real Cluster,
each failed over while logins keep coming on two instances. A login in flight finishes or
gets the clean 503 page (never a 500, never a session without its state recorded); logins
work again after the failover, on the same middleware objects; no page shows a password."""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from dingmw import ASGIMiddleware
from dingmw.testing import ZHANGSAN, FakeDingTalk

from ..redis_ha import ClusterSetup, SentinelSetup
from ..servers import serve_asgi
from ..support import asgi_app, build_client, login, make_settings
from .conftest import HA_PASSWORD
from .test_middleware import session_cookies

pytestmark = pytest.mark.redis

DEADLINE = 60.0
LOGIN_TIMEOUT = 30.0  # seconds one login's requests may take while Redis fails over


@pytest.fixture
def sentinel() -> Iterator[SentinelSetup]:
    with SentinelSetup(password=HA_PASSWORD) as setup:
        yield setup


@pytest.fixture
def cluster() -> Iterator[ClusterSetup]:
    with ClusterSetup(password=HA_PASSWORD) as setup:
        yield setup


class Traffic:
    """Logins on two middleware instances sharing `url`, in the background, counted by epoch."""

    def __init__(self, adapter: str, fake: FakeDingTalk, url: str) -> None:
        self.fake = fake
        settings = make_settings("sns", store_url=url)
        self.servers = contextlib.ExitStack()
        if adapter == "wsgi":
            self.clients: list[httpx.Client] = [
                build_client(adapter, settings, fake) for _ in range(2)
            ]
        else:
            # ASGI under uvicorn, one event loop per instance as in production (Starlette's
            # TestClient would run every request in a loop of its own).
            self.clients = []
            for _ in range(2):
                app = ASGIMiddleware(asgi_app(), settings, transport=fake.transport())
                base = self.servers.enter_context(serve_asgi(app))
                # A login during a failover may wait out the store's attempts on each of its
                # few commands (several seconds on a Cluster, until it has promoted the
                # replica): httpx's 5 s default would call that an error. A login that hangs
                # still fails the test (`check`: every thread must have ended).
                self.clients.append(
                    httpx.Client(base_url=base, follow_redirects=False, timeout=LOGIN_TIMEOUT)
                )
        self.results: list[tuple[int, int, bool, str]] = []  # epoch, status, session, body
        self.epoch = 0
        self.errors: list[BaseException] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=([c],)) for c in self.clients]

    def run(self, clients: list[httpx.Client]) -> None:
        try:
            for client in itertools.cycle(clients):
                if self.stop.is_set():
                    return
                client.cookies.clear()
                started = self.epoch
                response = login(client, self.fake, ZHANGSAN.unionid)
                has_session = bool(session_cookies(response))
                self.results.append((started, response.status_code, has_session, response.text))
        except BaseException as exc:  # reported by the test
            self.errors.append(exc)

    def successes_since(self, epoch: int) -> int:
        return sum(1 for e, status, _, _ in self.results if e >= epoch and status == 302)

    def wait_for(self, condition: Callable[[], bool]) -> None:
        deadline = time.monotonic() + DEADLINE
        while not condition() and not self.errors:
            assert time.monotonic() < deadline, [r[:3] for r in self.results]
            time.sleep(0.01)  # the traffic threads make the progress waited for

    def __enter__(self) -> Traffic:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(DEADLINE)
        for client in self.clients:
            client.close()
        self.servers.close()

    def check(self) -> None:
        assert not self.errors, self.errors
        assert not any(t.is_alive() for t in self.threads), "a login hung"
        for _, status, has_session, body in self.results:
            assert status in (302, 503), (status, body[:300])
            assert has_session == (status == 302)
            assert HA_PASSWORD not in body
            if status == 503:
                assert 'data-reason="store_unavailable"' in body


def fail_over_under_traffic(traffic: Traffic, fail_over: Callable[[], object]) -> None:
    with traffic:
        traffic.wait_for(lambda: traffic.successes_since(0) >= 3)
        traffic.epoch = 1
        fail_over()
        traffic.epoch = 2
        traffic.wait_for(lambda: traffic.successes_since(2) >= 5)
    traffic.check()


def test_sentinel_failover_during_logins(
    adapter: str, fake: FakeDingTalk, sentinel: SentinelSetup
) -> None:
    old = sentinel.master_port()
    fail_over_under_traffic(Traffic(adapter, fake, sentinel.url), sentinel.fail_over)
    assert sentinel.master_port() != old


def test_cluster_failover_during_logins(
    adapter: str, fake: FakeDingTalk, cluster: ClusterSetup
) -> None:
    # The app token the logins share lives in one slot; fail the master that serves it.
    key = f"dingmw:apptoken:sns:{make_settings('sns').app_key}"
    old = cluster.owner(key)
    fail_over_under_traffic(Traffic(adapter, fake, cluster.url), lambda: cluster.fail_over(key))
    assert cluster.owner(key) != old
