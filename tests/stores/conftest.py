"""Fixtures for the store tests: a real redis-server for the whole session (never skipped)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from ..redis_ha import ClusterSetup, SentinelSetup
from ..redis_server import RedisServer, RedisServerMissing


def _server(password: str | None = None) -> RedisServer:
    try:
        server = RedisServer(password=password)
    except RedisServerMissing as exc:
        missing = str(exc)
    else:
        server.start()
        return server
    pytest.fail(missing, pytrace=False)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the session; tests keep apart by namespace (or flush)."""
    server = _server()
    yield server
    server.close()


HA_PASSWORD = "ha-Pa55word-never-shown"


@pytest.fixture(scope="session")
def redis_sentinel() -> Iterator[SentinelSetup]:
    """A master, a replica and three sentinels for the session (tests that fail it over make
    their own)."""
    try:
        setup = SentinelSetup(password=HA_PASSWORD)
        setup.start()
    except RedisServerMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    yield setup
    setup.close()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[ClusterSetup]:
    """A three-master Redis Cluster (with replicas) for the session."""
    try:
        setup = ClusterSetup(password=HA_PASSWORD)
        setup.start()
    except RedisServerMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    yield setup
    setup.close()


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own, with a password, that the test may stop and restart."""
    server = _server(password="s3cret-Pa55word")
    yield server
    server.close()


@pytest.fixture
def raw_redis(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A plain client on the session server, to look at what the stores wrote."""
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def namespace() -> str:
    return f"test-{uuid.uuid4().hex[:12]}:"
