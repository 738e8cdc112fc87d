"""Real Redis high availability for tests: a Sentinel setup and a Cluster, on free ports.

    with SentinelSetup(password="...") as ha:   # a master, a replica, three sentinels
        ha.url                                    # redis+sentinel://:pw@…/mymaster/0
        ha.fail_over()                            # stop the master; returns once one is promoted

    with ClusterSetup(password="...") as ha:    # three masters, each with a replica
        ha.url                                    # redis+cluster://:pw@…
        ha.fail_over(key)                         # stop the master owning `key`'s slot

Everything runs from `redis-server` and `redis-sentinel` (Debian's `redis-sentinel`
package) or `redis-server --sentinel`, and `redis-cli --cluster create`. Missing binaries
raise `RedisServerMissing`, so the fixtures fail loudly instead of skipping. Nothing is
slept on: every step waits for the condition it needs, with a deadline.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import redis
from redis.crc import key_slot

from .processes import stop_process
from .redis_server import (
    HOST,
    RedisServer,
    RedisServerError,
    RedisServerMissing,
    Started,
    free_port,
)

SERVICE = "mymaster"
SETUP_TIMEOUT = 30.0
FAILOVER_TIMEOUT = 30.0


def wait_until(what: str, condition: Callable[[], bool], timeout: float = SETUP_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except (redis.RedisError, OSError):
            pass
        if time.monotonic() > deadline:
            raise RedisServerError(f"{what}: not within {timeout:.0f}s")
        time.sleep(0.02)  # polling a server's state: the condition is what is waited for


def _find(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise RedisServerMissing(
            f"{name} is not installed; the Redis Sentinel and Cluster tests need it and are "
            "required in CI: apt-get install redis-server redis-sentinel (Debian/Ubuntu)"
        )
    return found


def _client(port: int, password: str | None) -> redis.Redis:
    return redis.Redis(host=HOST, port=port, password=password, decode_responses=True)


class Sentinel:
    """One `redis-sentinel` process watching `SERVICE` (`config`: more lines for its file)."""

    def __init__(self, master_port: int, password: str | None, config: Sequence[str] = ()) -> None:
        self.executable = shutil.which("redis-sentinel")
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="dingmw-sentinel-"))
        lines = [
            f"port {self.port}",
            f"bind {HOST}",
            "daemonize no",
            f'dir "{self.dir}"',
            'logfile ""',
            f"sentinel monitor {SERVICE} {HOST} {master_port} 2",
            f"sentinel down-after-milliseconds {SERVICE} 500",
            f"sentinel failover-timeout {SERVICE} 3000",
            f"sentinel parallel-syncs {SERVICE} 1",
        ]
        if password:
            lines.append(f"sentinel auth-pass {SERVICE} {password}")
        lines += config
        self.config = self.dir / "sentinel.conf"  # sentinel rewrites it: a file of its own
        self.config.write_text("\n".join(lines) + "\n")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if self.executable:
            args = [self.executable, str(self.config)]
        else:
            args = [_find("redis-server"), str(self.config), "--sentinel"]
        with (self.dir / "sentinel.log").open("ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        wait_until(f"sentinel on port {self.port}", lambda: self.client().ping() is True)

    def client(self) -> redis.Redis:
        return _client(self.port, None)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            stop_process(process, 10)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class SentinelSetup(Started):
    """A master, one replica and three sentinels (quorum 2), all with `password`."""

    def __init__(self, *, password: str | None = None) -> None:
        self.password = password
        auth = ["--masterauth", password] if password else []
        self.master = RedisServer(password=password, extra_args=auth)
        self.servers = [self.master]
        self.sentinels: list[Sentinel] = []

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        nodes = ",".join(f"{HOST}:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{auth}{nodes}/{SERVICE}/0"

    def start(self) -> None:
        self.master.start()
        auth = ["--masterauth", self.password] if self.password else []
        replica = RedisServer(
            password=self.password,
            extra_args=["--replicaof", HOST, str(self.master.port), *auth],
        )
        self.servers.append(replica)
        replica.start()
        wait_until(
            "the replica in sync",
            lambda: (
                _client(replica.port, self.password).info("replication")["master_link_status"]
                == "up"
            ),
        )
        self.sentinels = [Sentinel(self.master.port, self.password) for _ in range(3)]
        for sentinel in self.sentinels:
            sentinel.start()
        for sentinel in self.sentinels:
            client = sentinel.client()
            wait_until(
                "every sentinel knowing the replica and the other sentinels",
                lambda c=client: (
                    len(c.sentinel_slaves(SERVICE)) == 1  # type: ignore[misc]
                    and len(c.sentinel_sentinels(SERVICE)) == 2
                ),
            )

    def master_port(self) -> int:
        address: Any = self.sentinels[0].client().sentinel_get_master_addr_by_name(SERVICE)
        return int(address[1])

    def fail_over(self) -> int:
        """Stop the master; return the port of the replica the sentinels promoted."""
        old = self.master_port()
        server = next(s for s in self.servers if s.port == old)
        server.stop()

        def promoted() -> bool:
            port = self.master_port()
            if port == old:
                return False
            role: Any = _client(port, self.password).role()
            return bool(role[0] == "master")

        wait_until("a new master after the failover", promoted, FAILOVER_TIMEOUT)
        return self.master_port()

    def close(self) -> None:
        for sentinel in self.sentinels:
            sentinel.close()
        for server in self.servers:
            server.close()


def cluster_ports(n: int) -> list[int]:
    """`n` free ports a cluster node can use: at most 55535, with the bus port (+10000) free."""
    ports: list[int] = []
    candidates = random.Random().sample(range(20000, 55535), 2000)  # noqa: S311  # ports
    for port in candidates:
        if _free(port) and _free(port + 10000):
            ports.append(port)
            if len(ports) == n:
                return ports
    raise RedisServerError("no free ports for a cluster")


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


class ClusterSetup(Started):
    """A Redis Cluster of three masters, each with one replica, all with `password`."""

    def __init__(self, *, password: str | None = None, masters: int = 3) -> None:
        self.password = password
        auth = ["--masterauth", password] if password else []
        options = [
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", "1000",
            "--cluster-replica-validity-factor", "0",
            *auth,
        ]  # fmt: skip
        self.servers = [
            RedisServer(port=port, password=password, extra_args=options)
            for port in cluster_ports(masters * 2)
        ]

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        masters = self.servers[: len(self.servers) // 2]
        return f"redis+cluster://{auth}" + ",".join(f"{HOST}:{s.port}" for s in masters)

    def running(self) -> list[RedisServer]:
        return [s for s in self.servers if s.running]

    def start(self) -> None:
        for server in self.servers:
            for attempt in range(3):  # a port found free may be taken before redis binds it
                try:
                    server.start()
                    break
                except RedisServerError:
                    if attempt == 2:
                        raise
                    server.port = cluster_ports(1)[0]
        command = [
            _find("redis-cli"),
            "--cluster", "create",
            *(f"{HOST}:{s.port}" for s in self.servers),
            "--cluster-replicas", "1",
            "--cluster-yes",
        ]  # fmt: skip
        if self.password:
            command += ["-a", self.password, "--no-auth-warning"]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            raise RedisServerError(
                f"redis-cli --cluster create failed:\n{done.stdout}{done.stderr}"
            )
        self.wait_healthy()

    def slots(self) -> list[tuple[int, int, int]]:
        """(first slot, last slot, master's port) as a running node sees them."""
        client = _client(self.running()[0].port, self.password)
        reply: Any = client.execute_command("CLUSTER", "SLOTS")  # type: ignore[no-untyped-call]
        return [(int(start), int(end), int(master[1])) for start, end, master, *_ in reply]

    def wait_healthy(self, timeout: float = SETUP_TIMEOUT) -> None:
        """Every running node sees the cluster `ok`, every slot served by a running master."""
        ports = {s.port for s in self.running()}

        def healthy() -> bool:
            for port in ports:
                info: Any = _client(port, self.password).execute_command(  # type: ignore[no-untyped-call]
                    "CLUSTER", "INFO"
                )
                text = (
                    info
                    if isinstance(info, str)
                    else "\n".join(f"{k}:{v}" for k, v in info.items())
                )
                if "cluster_state:ok" not in text:
                    return False
            served = self.slots()
            return sum(end - start + 1 for start, end, _ in served) == 16384 and all(
                port in ports for _, _, port in served
            )

        wait_until("the cluster healthy", healthy, timeout)

    def owner(self, key: str) -> int:
        """The port of the master serving `key`'s slot."""
        slot = key_slot(key.encode())
        return next(port for start, end, port in self.slots() if start <= slot <= end)

    def fail_over(self, key: str) -> int:
        """Stop the master owning `key`'s slot; return the port of the replica promoted."""
        old = self.owner(key)
        next(s for s in self.servers if s.port == old).stop()
        wait_until(
            "the slot served by a promoted replica",
            lambda: self.owner(key) != old,
            FAILOVER_TIMEOUT,
        )
        self.wait_healthy(FAILOVER_TIMEOUT)
        return self.owner(key)

    def close(self) -> None:
        for server in self.servers:
            server.close()
