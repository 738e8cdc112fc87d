"""`dingmw check`: what is wrong in the environment, what a production site should change
(`--deploy`), and (with `--live`) proof of the credentials and of the store.

Every problem is reported in one run. The live probes are flows like any other:
they yield their requests (and the store's PING) and a driver performs them, so
they exercise the same code a login does. What each flow and option proves is
declared with it (`providers.registry`).

Exit codes (`Report.exit_code`):

    0  no error (warnings may have been printed)
    1  the configuration has errors (with --strict: or --deploy warnings)
    2  the command line is wrong (argparse), or a command's requirement is missing
    3  the configuration is valid, but a --live probe failed (DingTalk, the hub or the store)
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
import string
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from urllib.parse import urlsplit

from . import declare, metrics
from .config import MIN_SECRET_KEY_LENGTH, Settings
from .core.effects import Flow, store_ping
from .core.health import READY_TIMEOUT
from .errors import ConfigError, LoginError
from .hub.settings import HubClient, HubSettings
from .stores import Store

OK, ERRORS, USAGE, LIVE_FAILED = 0, 1, 2, 3


@dataclasses.dataclass
class Report:
    """What one `dingmw check` found; `lines` go to stdout, the others to stderr."""

    lines: list[str] = dataclasses.field(default_factory=list)
    errors: list[str] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)
    live_failures: list[str] = dataclasses.field(default_factory=list)

    def exit_code(self, *, strict: bool = False) -> int:
        if self.errors or (strict and self.warnings):
            return ERRORS
        if self.live_failures:
            return LIVE_FAILED
        return OK


def describe(settings: Settings, environ: Mapping[str, str] | None = None) -> list[str]:
    """The settings as `dingmw check` prints them: each variable that is set (or differs from
    its default), then what follows from them. A secret shows only its length."""
    from .providers.registry import describe as what_follows

    rows = declare.shown(settings, environ)
    hub = _hub_settings(environ)
    if hub is not None:
        rows += declare.shown(hub, environ)
    width = max((len(name) for name, _ in rows), default=0)
    lines = [f"{name.ljust(width)}  {value}" for name, value in rows]
    return lines + what_follows(settings)


def problems(environ: Mapping[str, str] | None = None) -> tuple[Settings | None, list[str]]:
    """Every problem of the environment at once: malformed or missing values, rules over
    several settings, and unknown `DINGMW_*` variables (with the closest known name)."""
    settings, found = declare.problems(Settings, environ)
    env = os.environ if environ is None else environ
    if _runs_a_hub(env):
        found += declare.problems(HubSettings, env)[1]
    return settings, found + declare.unknown_variables(env)


def _runs_a_hub(env: Mapping[str, str]) -> bool:
    """The environment is a hub's: it sets one of `HubSettings`' variables."""
    names = {spec.env for _, spec in declare.specs(HubSettings) if spec.env}
    return any((env.get(name) or "").strip() for name in names)


def _hub_settings(environ: Mapping[str, str] | None) -> HubSettings | None:
    env = os.environ if environ is None else environ
    if not _runs_a_hub(env):
        return None
    return declare.problems(HubSettings, env)[0]


def open_store(settings: Settings) -> tuple[Store | None, str | None]:
    """The store the middleware would open (a sync one), or the problem that stops it."""
    from .stores import open_stores

    try:
        store, _ = open_stores(settings.store_url)
    except ConfigError as exc:
        return None, str(exc)
    return store, None


# --- --deploy ---------------------------------------------------------------------------------


ZLIB_OVERHEAD = 6  # zlib's 2-byte header and 4-byte Adler-32 checksum


def key_strength(key: str) -> float:
    """Bytes of randomness a key can hold at most: from its length and the alphabet it uses,
    and no more than it takes compressed (a key that repeats itself compresses well).

    A `secrets.token_urlsafe(32)` key scores 32.25 (its alphabet; it compresses to 42 bytes
    or more), `token_hex(32)` 32; `"a" * 200` scores 6, `"ab" * 40` 7."""
    chars = set(key)
    if chars <= set(string.hexdigits):
        alphabet = 16
    elif chars <= set(string.ascii_letters + string.digits + "-_"):
        alphabet = 64
    else:
        alphabet = 94
    alphabet = min(alphabet, max(len(chars), 2) ** 2)  # a key of few distinct characters
    compressed = len(zlib.compress(key.encode("utf-8"), 9)) - ZLIB_OVERHEAD
    return min(len(key) * math.log2(alphabet) / 8, compressed)


# The DingTalk endpoints, and what travels in clear when one of them is http.
ENDPOINT_SECRETS = (
    ("DINGMW_OAPI_URL", "oapi_url", "the app secret and DingTalk's tokens"),
    ("DINGMW_API_URL", "api_url", "the app secret, login codes and DingTalk's tokens"),
    ("DINGMW_LOGIN_URL", "login_url", "the QR login frames and login codes"),
)


def deploy_warnings(
    settings: Settings, *, workers: int, environ: Mapping[str, str] | None = None
) -> Iterator[str]:
    """What a production site should change, as Django's `check --deploy` does."""
    s = settings
    env = os.environ if environ is None else environ
    if s.base_url and urlsplit(s.base_url).scheme == "http":
        yield (
            "DINGMW_BASE_URL uses http: sessions and login codes travel in clear; serve the "
            "site over https"
        )
    if not s.base_url and not s.trust_proxy:
        yield (
            "DINGMW_BASE_URL is not set: redirect_uri is built from each request's Host header; "
            "set the public URL (or DINGMW_TRUST_PROXY=1 behind a proxy that sets X-Forwarded-*)"
        )
    if s.cookie_secure == "false":
        yield (
            "DINGMW_COOKIE_SECURE=false: the session cookie is sent over http too; use auto or true"
        )
    if s.store_url.startswith("memory://") and workers > 1:
        yield (
            f"DINGMW_STORE_URL=memory:// with {workers} workers: each process keeps its own "
            "replay protection and app tokens; use Redis (redis://...) to share them"
        )
    if (host := _open_redis_host(s.store_url)) is not None:
        yield (
            f"DINGMW_STORE_URL: Redis at {host} has no password: anyone who reaches it can use "
            "your DingTalk app tokens and change what a hub answers; give it a password "
            "(redis://:password@host:port/0)"
        )
    from .providers.registry import login_flow

    remote = login_flow(s.flow).remote(s)
    if remote is not None and urlsplit(remote).scheme == "http":
        yield (
            "DINGMW_HUB_URL uses http: the site's client secret, the codes and the tokens travel "
            "in clear; serve the hub over https"
        )
    if remote is None:  # a hub site talks to its hub only
        for name, attribute, what in ENDPOINT_SECRETS:
            if urlsplit(getattr(s, attribute)).scheme == "http":
                yield (
                    f"{name} uses http: {what} travel in clear (a fake DingTalk left over?); "
                    "use DingTalk's https URL (unset it for the default)"
                )
    for index, key in enumerate(s.secret_keys, start=1):
        if key_strength(key) < MIN_SECRET_KEY_LENGTH:
            yield (
                f"DINGMW_SECRET_KEY: key {index} holds less than {MIN_SECRET_KEY_LENGTH} bytes of "
                "randomness; generate one with: python -c 'import secrets; "
                "print(secrets.token_urlsafe(48))'"
            )
    if not (s.allowed_corp_ids or s.allowed_users or s.allowed_dept_ids):
        yield (
            "no allow-list: anyone who can log in to DingTalk and authorise the app gets in; set "
            "DINGMW_ALLOWED_CORP_IDS, DINGMW_ALLOWED_USERS or DINGMW_ALLOWED_DEPT_IDS"
        )
    if s.metrics and not s.metrics_token:
        yield (
            "DINGMW_METRICS=1 without DINGMW_METRICS_TOKEN: anyone who reaches "
            "/dingtalk/metrics reads it; set DINGMW_METRICS_TOKEN (or keep the path off the "
            "public proxy)"
        )
    if s.metrics and (problem := metrics.multiprocess_dir_problem(env)):
        yield (
            f"PROMETHEUS_MULTIPROC_DIR {problem}: with DINGMW_METRICS=1 no value is recorded; "
            "create it, empty and writable by every worker, before the server starts"
        )
    yield from hub_client_warnings(s.hub_clients)


LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


def _is_loopback(host: str) -> bool:
    host = host.strip("[]").lower().rstrip(".")
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _open_redis_host(store_url: str) -> str | None:
    """The first host of a Redis store reached in clear (not TLS, not a unix socket) with no
    password and not on this machine's loopback, or None."""
    from .stores.urls import BadStoreURL, parse_store_url

    try:
        parsed = parse_store_url(store_url)
    except BadStoreURL:
        return None
    if parsed.kind == "memory" or parsed.tls or not parsed.nodes or parsed.secrets:
        return None
    for host, _ in parsed.nodes:
        if not _is_loopback(host):
            return f"[{host}]" if ":" in host else host
    return None


def hub_client_warnings(clients: Iterable[HubClient]) -> Iterator[str]:
    for client in clients:
        for url in client.redirect_urls:
            if urlsplit(url).scheme == "http":
                yield (
                    f"DINGMW_HUB_CLIENTS: {client.client_id!r} has an http redirect URL; its "
                    "codes travel in clear"
                )
                break


# --- --live -----------------------------------------------------------------------------------


def store_probe(settings: Settings) -> Flow[str]:
    """`dingmw check --live`: the store answers a PING (as `/dingtalk/readyz` asks it)."""
    yield from store_ping(READY_TIMEOUT)
    return f"store: {declare.without_password(settings.store_url)} answers"


def live_probes(settings: Settings) -> list[Callable[[Settings], Flow[str]]]:
    from .providers.registry import probes

    return [store_probe, *probes(settings)]


def live_check(settings: Settings) -> Flow[list[str]]:
    """Every probe in turn (the first failure ends it); each line says what was proven."""
    results = []
    for probe in live_probes(settings):
        results.append((yield from probe(settings)))
    return results


def failure_line(exc: LoginError) -> str:
    call = exc.params.get("call", "")
    where = f" ({call})" if call else ""
    return f"{exc.reason}{where}: {exc.detail}"


def run(
    environ: Mapping[str, str] | None = None,
    *,
    live: bool = False,
    deploy: bool = False,
    workers: int = 1,
) -> Report:
    """Everything `dingmw check` does, without printing."""
    report = Report()
    settings, report.errors = problems(environ)
    if settings is None:
        return report
    store, problem = open_store(settings)
    if problem:
        report.errors.append(problem)
    report.lines = describe(settings, environ)
    if deploy:
        report.warnings = list(deploy_warnings(settings, workers=workers, environ=environ))
        hub = _hub_settings(environ)
        if hub is not None:
            report.warnings += hub_client_warnings(hub.clients)
    if report.errors or not live or store is None:
        return report
    import httpx

    from .core.drive import SyncRunner

    with httpx.Client(timeout=settings.http_timeout) as client:
        runner = SyncRunner(client, store)
        for probe in live_probes(settings):  # each one, so every failure is reported
            try:
                report.lines.append(runner.run(probe(settings)))
            except LoginError as exc:
                report.live_failures.append(failure_line(exc))
    return report
