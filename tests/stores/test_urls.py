"""`DINGMW_STORE_URL` forms, read without redis: nodes, service, database, and no secret shown."""

from __future__ import annotations

import re

import pytest
import redis

from dingmw import ConfigError, Settings
from dingmw.checks import describe
from dingmw.stores import open_stores
from dingmw.stores.redis import AsyncRedisStore, RedisStore
from dingmw.stores.urls import BadStoreURL, parse_store_url

PASSWORD = "st0re-Pa55word-never-shown"
SENTINEL_PASSWORD = "sentinel-Pa55word-never-shown"


def test_sentinel_url() -> None:
    parsed = parse_store_url(
        f"redis+sentinel://:{PASSWORD}@10.0.0.1:26379,10.0.0.2,[::1]:26380/mymaster/2"
        f"?sentinel_password={SENTINEL_PASSWORD}"
    )
    assert parsed.kind == "sentinel"
    assert parsed.nodes == (("10.0.0.1", 26379), ("10.0.0.2", 26379), ("::1", 26380))
    assert (parsed.service, parsed.db) == ("mymaster", 2)
    assert (parsed.password, parsed.sentinel_password) == (PASSWORD, SENTINEL_PASSWORD)
    assert parsed.location == (
        "redis+sentinel://10.0.0.1:26379,10.0.0.2:26379,[::1]:26380/mymaster/2"
    )
    assert PASSWORD not in repr(parsed)


def test_cluster_url() -> None:
    parsed = parse_store_url(f"rediss+cluster://app:{PASSWORD}@r1:7000,r2:7001,r3")
    assert (parsed.kind, parsed.tls) == ("cluster", True)
    assert parsed.nodes == (("r1", 7000), ("r2", 7001), ("r3", 6379))
    assert (parsed.username, parsed.password) == ("app", PASSWORD)
    assert parsed.location == "rediss+cluster://r1:7000,r2:7001,r3:6379"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis+sentinel://h1,h2", "needs the master's service name"),
        ("redis+sentinel://h1/mymaster/zero", "must end with a database number"),
        ("redis+sentinel:///mymaster", "needs at least one host"),
        ("redis+sentinel://h1:port/mymaster", "has a port that is not a number"),
        ("redis+sentinel://h1:0/mymaster", "has a port that is not a number"),
        ("redis+cluster://[::1:7000", "has a host that is not valid"),
        ("redis+cluster://h1:7000/0", "takes no path"),
        ("redis+cluster://h1:7000?db=1", "has an option redis+cluster:// does not take (db)"),
        ("redis+cluster://h1,,:7000", "has an empty host"),
        ("memcached://h1", "must be memory://"),
    ],
)
def test_malformed_urls_say_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(BadStoreURL, match=re.escape(message)):
        parse_store_url(url)
    with pytest.raises(ConfigError) as info:
        open_stores(url)
    assert str(info.value).startswith("DINGMW_STORE_URL ")


@pytest.mark.parametrize(
    "url",
    [
        f"redis+sentinel://:{PASSWORD}@127.0.0.1:26379/mymaster",
        f"redis+cluster://:{PASSWORD}@127.0.0.1:7000,127.0.0.1:7001",
    ],
)
def test_ha_urls_open_stores_without_connecting(url: str) -> None:
    sync, aio = open_stores(url)
    assert isinstance(sync, RedisStore)
    assert isinstance(aio, AsyncRedisStore)
    assert PASSWORD not in repr(sync) + repr(aio)
    sync.close()


def test_settings_take_ha_urls_and_never_show_their_password() -> None:
    url = (
        f"redis+sentinel://:{PASSWORD}@10.0.0.1,10.0.0.2/mymaster"
        f"?sentinel_password={SENTINEL_PASSWORD}"
    )
    settings = Settings.from_env(
        {
            "DINGMW_APP_KEY": "k",
            "DINGMW_APP_SECRET": "app-secret-0123456789",
            "DINGMW_SECRET_KEY": "signing-key-0123456789-0123456789-abc",
            "DINGMW_STORE_URL": url,
        }
    )
    shown = "\n".join(describe(settings, {"DINGMW_STORE_URL": url}))
    assert "redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/mymaster/0" in shown
    assert PASSWORD not in shown
    assert SENTINEL_PASSWORD not in shown


@pytest.mark.parametrize(
    ("url", "option"),
    [
        (f"redis://:{PASSWORD}@127.0.0.1:6379/0?foo=bar", "redis:// does not take (foo)"),
        (
            f"redis://:{PASSWORD}@127.0.0.1:6379/0?ssl_cert_reqs=required",
            "redis:// does not take (ssl_cert_reqs)",
        ),
        (f"rediss://:{PASSWORD}@127.0.0.1:6379/0?sslcert=x", "rediss:// does not take (sslcert)"),
        (f"unix:///run/redis.sock?password={PASSWORD}&foo=1", "unix:// does not take (foo)"),
        (
            f"redis://:{PASSWORD}@127.0.0.1:6379/0?socket_timeout=soon",
            "whose value is not valid (socket_timeout)",
        ),
    ],
)
def test_options_redis_py_does_not_take_are_refused_when_read(url: str, option: str) -> None:
    """Not at the first request, as a TypeError (a 500) on every one."""
    with pytest.raises(BadStoreURL, match=re.escape(option)):
        parse_store_url(url)
    env = {
        "DINGMW_APP_KEY": "k",
        "DINGMW_APP_SECRET": "app-secret-0123456789",
        "DINGMW_SECRET_KEY": "signing-key-0123456789-0123456789-abc",
        "DINGMW_STORE_URL": url,
    }
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    assert "DINGMW_STORE_URL" in str(caught.value)
    assert option in str(caught.value)
    assert PASSWORD not in str(caught.value)
    with pytest.raises(ConfigError, match=re.escape(option)):
        open_stores(url)


def test_options_redis_py_takes_are_accepted() -> None:
    for url in (
        "redis://127.0.0.1:6379/0?socket_keepalive=true&client_name=web",
        "rediss://127.0.0.1:6379/0?ssl_cert_reqs=required&ssl_ca_certs=/etc/ca.pem",
        "unix:///run/redis.sock?db=1&password=pw",
    ):
        parse_store_url(url)


@pytest.mark.parametrize(
    ("url", "db", "location"),
    [
        ("redis://127.0.0.1:6379/0?db=5", 5, "redis://127.0.0.1:6379/5"),
        ("redis://127.0.0.1:6379?db=3&db=4", 3, "redis://127.0.0.1:6379/3"),
        ("rediss://r.example/02", 2, "rediss://r.example/2"),
        ("unix:///run/redis.sock?db=1", 1, "unix:///run/redis.sock?db=1"),
        ("unix:///run/redis.sock", 0, "unix:///run/redis.sock?db=0"),
    ],
)
def test_the_location_shows_the_database_redis_py_uses(url: str, db: int, location: str) -> None:
    parsed = parse_store_url(url)
    assert (parsed.db, parsed.location) == (db, location)
    sync, _ = open_stores(url)
    assert isinstance(sync, RedisStore)
    client = sync.client
    assert isinstance(client, redis.Redis)
    assert client.connection_pool.connection_kwargs.get("db", 0) == db
    sync.close()
