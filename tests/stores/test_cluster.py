"""The Redis store on a Cluster, beyond the contract: readiness covers every primary and the
cluster's own state, not the one node redis-py sends a keyless command to."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import redis.asyncio.cluster
import redis.cluster

from dingmw.errors import StoreError
from dingmw.stores.redis import AsyncRedisStore, RedisStore

from ..redis_ha import ClusterSetup, _client, wait_until
from .conftest import HA_PASSWORD

pytestmark = pytest.mark.redis

WITHIN = 1.0  # the readiness probe's timeout


@pytest.fixture
def cluster() -> Iterator[ClusterSetup]:
    """A Cluster of this test's own (it stops a master and unassigns a slot)."""
    with ClusterSetup(password=HA_PASSWORD) as setup:
        yield setup


class Probes:
    """A sync and an async store on one cluster, probed from one event loop."""

    def __init__(self, url: str) -> None:
        self.sync = RedisStore(url)
        self.aio = AsyncRedisStore(url)
        self.loop = asyncio.new_event_loop()

    def results(self) -> tuple[str, str]:
        """Each store's probe: "ok", or the StoreError's detail."""
        try:
            self.sync.ping(WITHIN)
            sync = "ok"
        except StoreError as exc:
            sync = exc.detail
        try:
            self.loop.run_until_complete(self.aio.ping(WITHIN))
            aio = "ok"
        except StoreError as exc:
            aio = exc.detail
        return sync, aio

    def default_nodes(self) -> set[int]:
        """The nodes redis-py would send a plain PING to (each client picks its own)."""
        probe: Any = self.sync._probe(WITHIN)
        client: Any = self.loop.run_until_complete(self.aio.client())
        return {probe.get_default_node().port, client.get_default_node().port}

    def close(self) -> None:
        self.sync.close()
        self.loop.run_until_complete(self.aio.aclose())
        self.loop.close()


def test_readiness_covers_every_primary_and_the_cluster_state(cluster: ClusterSetup) -> None:
    probes = Probes(cluster.url)
    try:
        assert probes.results() == ("ok", "ok")
        # A primary redis-py would not PING stops; the others would not call it failed for
        # a long while, nor promote its replica: writes to its slots fail all that time.
        for server in cluster.running():
            _client(server.port, HA_PASSWORD).config_set("cluster-node-timeout", 60000)
        primaries = {port for _, _, port in cluster.slots()}
        victim = next(s for s in cluster.servers if s.port in primaries - probes.default_nodes())
        victim.stop()
        sync, aio = probes.results()
        assert str(victim.port) in sync
        assert str(victim.port) in aio

        victim.start()  # it rejoins, with its slots
        wait_until("both probes ok again", lambda: probes.results() == ("ok", "ok"))

        # A slot no node serves: every node answers PING, the cluster refuses commands.
        start, _, owner = cluster.slots()[0]
        owner_client = _client(owner, HA_PASSWORD)
        owner_client.execute_command("CLUSTER", "DELSLOTS", start)  # type: ignore[no-untyped-call]
        wait_until(
            "both probes seeing the cluster down",
            lambda: all("cluster_state is fail" in r for r in probes.results()),
        )
        owner_client.execute_command("CLUSTER", "ADDSLOTS", start)  # type: ignore[no-untyped-call]
        wait_until("both probes ok again", lambda: probes.results() == ("ok", "ok"))
    finally:
        probes.close()


def test_readiness_asks_primaries_only(
    redis_cluster: ClusterSetup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One `CLUSTER INFO` per primary, sync and async (redis-py's own fan-out)."""
    seen: list[Any] = []
    sync_info = redis.cluster.RedisCluster.cluster_info
    async_info = redis.asyncio.cluster.RedisCluster.cluster_info

    def record_sync(self: Any, target_nodes: Any = None) -> Any:
        seen.append(target_nodes)
        return sync_info(self, target_nodes=target_nodes)

    async def record_async(self: Any, target_nodes: Any = None) -> Any:
        seen.append(target_nodes)
        return await async_info(self, target_nodes=target_nodes)

    monkeypatch.setattr(redis.cluster.RedisCluster, "cluster_info", record_sync)
    monkeypatch.setattr(redis.asyncio.cluster.RedisCluster, "cluster_info", record_async)
    probes = Probes(redis_cluster.url)
    try:
        assert probes.results() == ("ok", "ok")
    finally:
        probes.close()
    assert seen == [
        redis.cluster.RedisCluster.PRIMARIES,
        redis.asyncio.cluster.RedisCluster.PRIMARIES,
    ]
