"""`DINGMW_STORE_URL`, read without importing redis: its form, its nodes, and a safe spelling
(and, when redis is installed, whether redis-py takes a single server's options).

    memory://
    redis://[[user]:password@]host[:port][/db]        rediss://… (TLS)    unix:///path?db=0
    redis+sentinel://[[user]:password@]host[:port][,host[:port]…]/service_name[/db]
    rediss+sentinel://…                                 (TLS to the sentinels and the master)
    redis+cluster://[[user]:password@]host[:port][,host[:port]…]
    rediss+cluster://…                                  (TLS)

The password of a Sentinel URL is the master's; `?sentinel_password=` is the sentinels'
own, when they have one. The TLS forms take the options a `rediss://` URL takes for its
certificates (`?ssl_ca_certs=`, `ssl_cert_reqs`, `ssl_certfile`, `ssl_keyfile`,
`ssl_check_hostname`); a single server's options are whatever redis-py's URL takes, checked
here (when redis is installed) so that a mistyped one is refused at start-up.
`ParsedStoreURL.location` is the URL without any secret, for messages and logs; `secrets`
are the strings to scrub from a driver's error text.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

Kind = Literal["memory", "single", "sentinel", "cluster"]

FORMS = (
    "memory://, redis://host:port/db, rediss://…, unix:///path, "
    "redis+sentinel://host:port,host:port/service_name[/db] or redis+cluster://host:port,host:port"
)
SENTINEL_PORT = 26379
REDIS_PORT = 6379
_SINGLE = {"redis": False, "rediss": True, "unix": False}
_MULTI: dict[str, tuple[Kind, bool]] = {
    "redis+sentinel": ("sentinel", False),
    "rediss+sentinel": ("sentinel", True),
    "redis+cluster": ("cluster", False),
    "rediss+cluster": ("cluster", True),
}
_MULTI_OPTIONS = {"sentinel_password"}
# The certificate options of a TLS Sentinel or Cluster URL, as redis-py's SSL connections name
# them, and how to read each value.
_TRUE, _FALSE = {"1", "true", "yes", "on", "y"}, {"0", "false", "no", "off", "n", ""}
_CERT_REQS = ("none", "optional", "required")
TLS_OPTIONS = ("ssl_ca_certs", "ssl_cert_reqs", "ssl_certfile", "ssl_keyfile", "ssl_check_hostname")


class BadStoreURL(ValueError):
    """The rest of a message that starts with `DINGMW_STORE_URL` (it never holds a secret)."""


@dataclasses.dataclass(frozen=True, slots=True)
class ParsedStoreURL:
    url: str = dataclasses.field(repr=False)
    kind: Kind
    tls: bool = False
    nodes: tuple[tuple[str, int], ...] = ()
    service: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    sentinel_password: str | None = dataclasses.field(default=None, repr=False)
    location: str = ""
    tls_options: tuple[tuple[str, str | bool], ...] = ()  # a TLS Sentinel's or Cluster's

    @property
    def secrets(self) -> list[str]:
        """Every form of every secret in the URL, longest first (for scrubbing error text)."""
        raw = {self.password or "", self.sentinel_password or ""}
        parts = urlsplit(self.url) if self.kind in ("single", "memory") else None
        if parts is not None:
            raw.add(parts.password or "")
            raw.update(v for k, v in parse_qsl(parts.query) if k == "password")
        forms = {s for secret in raw for s in (secret, unquote(secret)) if s}
        return sorted(forms, key=len, reverse=True)


def parse_store_url(url: str) -> ParsedStoreURL:
    """Read `url`; `BadStoreURL` says what is wrong with it, without repeating it."""
    scheme, sep, _ = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise BadStoreURL(f"must be {FORMS}")
    if scheme == "memory":
        return ParsedStoreURL(url, "memory", location="memory://")
    if scheme in _SINGLE:
        return _single(url, scheme)
    if scheme in _MULTI:
        return _multi(url, scheme)
    raise BadStoreURL(f"must be {FORMS}")


def _single(url: str, scheme: str) -> ParsedStoreURL:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise BadStoreURL("is not a valid URL (check its brackets and port number)") from None
    # The database redis-py uses: the first ?db=, else the path's.
    query_db = next((v for k, v in parse_qsl(parts.query) if k == "db"), None)
    if scheme == "unix":
        if not parts.path:
            raise BadStoreURL("needs the socket's path: unix:///run/redis/redis.sock")
        db_text = query_db or "0"
        if not db_text.isdigit():
            raise BadStoreURL("must have a database number: unix:///path?db=0")
        _check_redis_options(url, scheme)
        location = f"unix://{parts.path}?db={int(db_text)}"
        return ParsedStoreURL(url, "single", location=location, db=int(db_text))
    if not parts.hostname:
        raise BadStoreURL("needs a host: redis://host:port/db")
    db_text = parts.path.strip("/") or "0"
    if not db_text.isdigit():
        raise BadStoreURL("must end with a database number: redis://host:port/0")
    if query_db is not None:
        if not query_db.isdigit():
            raise BadStoreURL("has a ?db= that is not a database number")
        db_text = query_db
    _check_redis_options(url, scheme)
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    where = f"{host}:{port}" if port else host
    return ParsedStoreURL(
        url,
        "single",
        tls=_SINGLE[scheme],
        nodes=((parts.hostname, port or REDIS_PORT),),
        db=int(db_text),
        location=f"{scheme}://{where}/{int(db_text)}",
    )


def _multi(url: str, scheme: str) -> ParsedStoreURL:
    kind, tls = _MULTI[scheme]
    rest = url.split("://", 1)[1]
    rest, _, fragment = rest.partition("#")
    rest, _, query = rest.partition("?")
    userinfo, at, hosts_and_path = rest.rpartition("@")
    if not at:
        hosts_and_path = rest
    hosts, _, path = hosts_and_path.partition("/")
    username, password = None, None
    if userinfo:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    default = SENTINEL_PORT if kind == "sentinel" else REDIS_PORT
    nodes = tuple(_node(item.strip(), default) for item in hosts.split(",") if item.strip())
    if not nodes:
        raise BadStoreURL(f"needs at least one host: {scheme}://host:port,host:port/…")
    options = dict(parse_qsl(query, keep_blank_values=True))
    unknown = sorted(set(options) - _MULTI_OPTIONS - (set(TLS_OPTIONS) if tls else set()))
    if unknown or fragment:
        raise BadStoreURL(
            f"has an option {scheme}:// does not take"
            + (f" ({', '.join(unknown)})" if unknown else " (a #fragment)")
        )
    tls_options = tuple(
        (name, _tls_value(name, options[name])) for name in TLS_OPTIONS if name in options
    )
    segments = [s for s in path.split("/") if s]
    service, db = "", 0
    if kind == "sentinel":
        if not segments or len(segments) > 2:
            raise BadStoreURL(
                "needs the master's service name: redis+sentinel://host:port,host:port/mymaster"
            )
        service = unquote(segments[0])
        if len(segments) == 2:
            if not segments[1].isdigit():
                raise BadStoreURL("must end with a database number: …/mymaster/0")
            db = int(segments[1])
    elif segments:
        raise BadStoreURL("takes no path: a cluster has one database (redis+cluster://h:p,h:p)")
    shown = ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in nodes)
    suffix = f"/{service}/{db}" if kind == "sentinel" else ""
    return ParsedStoreURL(
        url,
        kind,
        tls=tls,
        nodes=nodes,
        service=service,
        db=db,
        username=username,
        password=password,
        sentinel_password=options.get("sentinel_password") or None,
        location=f"{scheme}://{shown}{suffix}",
        tls_options=tls_options,
    )


def _tls_value(name: str, value: str) -> str | bool:
    if name == "ssl_check_hostname":
        if value.lower() not in _TRUE | _FALSE:
            raise BadStoreURL("has an ssl_check_hostname that is not true or false")
        return value.lower() in _TRUE
    if name == "ssl_cert_reqs":
        if value.lower() not in _CERT_REQS:
            raise BadStoreURL("has an ssl_cert_reqs that is not none, optional or required")
        return value.lower()
    if not value:
        raise BadStoreURL(f"has an empty {name} (a file's path)")
    return value


_KEYWORD = re.compile(r"unexpected keyword argument '(\w+)'")
_VALUE = re.compile(r"value for '(\w+)'")


def _check_redis_options(url: str, scheme: str) -> None:
    """Refuse the query options redis-py would only trip on at the first command: build its
    connection pool from `url` and one connection (which connects nothing), sync and async.
    Without redis installed there is nothing to check (opening the store says so)."""
    try:
        import redis.asyncio
        import redis.connection
        from redis.exceptions import RedisError
    except ImportError:
        return
    for pool_class in (redis.connection.ConnectionPool, redis.asyncio.ConnectionPool):
        try:
            pool: Any = pool_class.from_url(url)
            pool.connection_class(**pool.connection_kwargs)
        except TypeError as exc:
            found = _KEYWORD.search(str(exc))
            name = f" ({found.group(1)})" if found else ""
            raise BadStoreURL(f"has an option {scheme}:// does not take{name}") from None
        except (ValueError, RedisError) as exc:
            if not url.startswith(f"{scheme}://"):
                raise BadStoreURL(f"must spell its scheme in lower case: {scheme}://…") from None
            found = _VALUE.search(str(exc))
            name = f" ({found.group(1)})" if found else ""
            raise BadStoreURL(f"has an option whose value is not valid{name}") from None


def _node(item: str, default_port: int) -> tuple[str, int]:
    if item.startswith("["):
        host, bracket, tail = item[1:].partition("]")
        if not bracket or (tail and not tail.startswith(":")):
            raise BadStoreURL("has a host that is not valid (check its brackets)")
        port_text = tail[1:]
    else:
        host, _, port_text = item.partition(":")
    if not host:
        raise BadStoreURL("has an empty host")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise BadStoreURL("has a port that is not a number from 1 to 65535")
    return host, int(port_text)
