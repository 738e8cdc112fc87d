"""Fixtures for the store tests: a real redis-server for the whole session (never skipped)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest
import redis

from ..redis_ha import ClusterSetup, SentinelSetup
from ..redis_server import RedisServer, RedisServerMissing, Started

S = TypeVar("S", bound=Started)


def started(make: Callable[[], S]) -> Iterator[S]:
    """For a fixture: `make()` started, and closed after its tests. Without redis-server the
    tests fail, saying how to install it (they never skip)."""
    try:
        with make() as setup:
            yield setup
    except RedisServerMissing as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the session; tests keep apart by namespace (or flush)."""
    yield from started(RedisServer)


HA_PASSWORD = "ha-Pa55word-never-shown"


@pytest.fixture(scope="session")
def redis_sentinel() -> Iterator[SentinelSetup]:
    """A master, a replica and three sentinels for the session (tests that fail it over make
    their own)."""
    yield from started(lambda: SentinelSetup(password=HA_PASSWORD))


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[ClusterSetup]:
    """A three-master Redis Cluster (with replicas) for the session."""
    yield from started(lambda: ClusterSetup(password=HA_PASSWORD))


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own, with a password, that the test may stop and restart."""
    yield from started(lambda: RedisServer(password="s3cret-Pa55word"))


@pytest.fixture
def raw_redis(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A plain client on the session server, to look at what the stores wrote."""
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def namespace() -> str:
    return f"test-{uuid.uuid4().hex[:12]}:"
