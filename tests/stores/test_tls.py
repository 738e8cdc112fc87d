"""TLS Redis behind Sentinel, with a private CA: `rediss+sentinel://…?ssl_ca_certs=` reaches
the sentinels and the master over TLS (without the CA, verification fails); and the
certificate options of a TLS Sentinel or Cluster URL reach every connection."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio.cluster
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from dingmw.errors import StoreError
from dingmw.stores.redis import AsyncRedisStore, RedisStore
from dingmw.stores.redis_clients import SentinelSSLConnection, async_client
from dingmw.stores.urls import BadStoreURL, parse_store_url

from ..redis_ha import SERVICE, Sentinel, wait_until
from ..redis_server import HOST, RedisServer, free_port

pytestmark = pytest.mark.redis


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A private CA and a certificate it signed for 127.0.0.1: (ca, cert, key) files."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("dingmw test CA"))
        .issuer_name(_name("dingmw test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = directory / "ca.crt", directory / "server.crt", directory / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(paths[2], key)
    return paths


def tls_config(ca: Path, cert: Path, key: Path) -> list[str]:
    return [
        f"tls-cert-file {cert}",
        f"tls-key-file {key}",
        f"tls-ca-cert-file {ca}",
        "tls-auth-clients no",
    ]


@pytest.fixture
def tls_sentinel(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A TLS master and a TLS sentinel watching it over TLS: (the store URL without its CA,
    the CA's file). Both keep a plain port too, for the fixtures' own readiness checks."""
    ca, cert, key = make_certificates(tmp_path)
    files = tls_config(ca, cert, key)
    master_tls = free_port()
    master = RedisServer(
        extra_args=[
            "--tls-port",
            str(master_tls),
            *(word for line in files for word in ("--" + line.split()[0], line.split()[1])),
        ]
    )
    sentinel_tls = free_port()
    with master:
        watcher = Sentinel(
            master_tls, None, [f"tls-port {sentinel_tls}", "tls-replication yes", *files]
        )
        try:
            watcher.start()

            def sees_master() -> bool:
                state: Any = watcher.client().sentinel_master(SERVICE)
                return bool(state["flags"] == "master")

            wait_until("the sentinel seeing the master over TLS", sees_master)
            yield f"rediss+sentinel://{HOST}:{sentinel_tls}/{SERVICE}/0", ca
        finally:
            watcher.close()


def test_a_tls_sentinel_with_a_private_ca(tls_sentinel: tuple[str, Path]) -> None:
    url, ca = tls_sentinel
    store = RedisStore(f"{url}?ssl_ca_certs={ca}")
    try:
        assert store.put("tls", "yes", 60) is True
        store.ping(1.0)
    finally:
        store.close()

    async def round_trip() -> str | None:
        aio = AsyncRedisStore(f"{url}?ssl_ca_certs={ca}")
        await aio.ping(1.0)
        value = await aio.take("tls")
        await aio.aclose()
        return value

    assert asyncio.run(round_trip()) == "yes"
    without = RedisStore(url)
    try:
        # redis-py's default CAs do not know the private one: no sentinel can be asked.
        with pytest.raises(StoreError, match="MasterNotFoundError"):
            without.get("tls")
    finally:
        without.close()


TLS = (
    "?ssl_ca_certs=/etc/dingmw/ca.pem&ssl_cert_reqs=required&ssl_certfile=/etc/dingmw/c.pem"
    "&ssl_keyfile=/etc/dingmw/c.key&ssl_check_hostname=false"
)
EXPECTED = {
    "ssl_ca_certs": "/etc/dingmw/ca.pem",
    "ssl_cert_reqs": "required",
    "ssl_certfile": "/etc/dingmw/c.pem",
    "ssl_keyfile": "/etc/dingmw/c.key",
    "ssl_check_hostname": False,
}


def _has_options(kwargs: dict[str, Any]) -> bool:
    return all(kwargs.get(name) == value for name, value in EXPECTED.items())


def test_certificate_options_reach_the_sentinels_and_the_master() -> None:
    store = RedisStore(f"rediss+sentinel://10.0.0.1,10.0.0.2/mymaster{TLS}")
    client = store.client
    assert isinstance(client, redis.Redis)
    pool = client.connection_pool
    assert pool.connection_class is SentinelSSLConnection
    assert _has_options(pool.connection_kwargs)
    watchers = pool.connection_kwargs["connection_pool"].sentinel_manager.sentinels
    assert len(watchers) == 2
    for watcher in watchers:
        assert watcher.connection_pool.connection_class is redis.SSLConnection
        assert _has_options(watcher.connection_pool.connection_kwargs)
    store.close()


async def test_certificate_options_reach_every_async_connection() -> None:
    parsed = parse_store_url(f"rediss+sentinel://10.0.0.1,10.0.0.2/mymaster{TLS}")
    master, close = async_client(parsed, connect_timeout=1, read_timeout=1)
    assert isinstance(master, redis.asyncio.Redis)
    assert _has_options(master.connection_pool.connection_kwargs)
    await close()
    parsed = parse_store_url(f"rediss+cluster://10.0.0.1:7000{TLS}")
    cluster, close = async_client(parsed, connect_timeout=1, read_timeout=1)
    assert isinstance(cluster, redis.asyncio.cluster.RedisCluster)
    for node in cluster.get_nodes() or cluster.nodes_manager.startup_nodes.values():
        assert _has_options(node.connection_kwargs)
    await close()


def test_the_sync_cluster_client_is_given_the_certificate_options(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    given: dict[str, Any] = {}

    class Recorder:
        def __init__(self, **kwargs: Any) -> None:
            given.update(kwargs)

        def close(self) -> None:
            pass

    monkeypatch.setattr(redis.cluster, "RedisCluster", Recorder)
    store = RedisStore(f"rediss+cluster://10.0.0.1:7000{TLS}")
    assert isinstance(store.client, Recorder)
    assert given["ssl"] is True
    assert _has_options(given)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis+sentinel://h/mymaster?ssl_ca_certs=/ca.pem", "does not take (ssl_ca_certs)"),
        ("redis+cluster://h?ssl_cert_reqs=none", "does not take (ssl_cert_reqs)"),
        ("rediss+cluster://h?ssl_cert_reqs=maybe", "not none, optional or required"),
        ("rediss+cluster://h?ssl_check_hostname=perhaps", "not true or false"),
        ("rediss+sentinel://h/mymaster?ssl_ca_certs=", "empty ssl_ca_certs"),
        ("rediss+sentinel://h/mymaster?ssl_ciphers=x", "does not take (ssl_ciphers)"),
    ],
)
def test_certificate_options_are_for_tls_urls(url: str, message: str) -> None:
    with pytest.raises(BadStoreURL, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_store_url(url)
