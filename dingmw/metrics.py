"""Prometheus metrics (`DINGMW_METRICS=1`, `pip install 'dingmw[metrics]'`).

Each function below is one call site's line; they do nothing until `enable()` (which the
core calls when `DINGMW_METRICS=1`), so dingmw never needs `prometheus_client` otherwise.
Nothing is counted on the authenticated request path.

    dingmw_logins_started_total{flow}
    dingmw_logins_completed_total{flow}
    dingmw_logins_failed_total{flow, reason}
    dingmw_dingtalk_request_duration_seconds{call, outcome}     histogram
    dingmw_dingtalk_errors_total{call, code}
    dingmw_app_token_fetches_total{call, outcome}
    dingmw_store_operation_duration_seconds{operation, outcome}  histogram
    dingmw_store_errors_total{operation}
    dingmw_hub_grants_total{grant_type, result}
    dingmw_sessions_revoked_total{scope}

Labels come from dingmw's own names (flows, DingTalk call names, error reasons, Redis
commands), never from a person or a request; each label also keeps at most
`MAX_LABEL_VALUES` distinct values (the rest are counted as `other`), so the number of
series stays bounded whatever happens.

Several processes (gunicorn workers): set `PROMETHEUS_MULTIPROC_DIR` to an empty
directory before the server starts; every worker then writes its values there and
`/dingtalk/metrics`, answered by any worker, adds up all of them (prometheus_client's
multiprocess mode).

Metrics never change a request's outcome: a call site that fails (a missing or full
`PROMETHEUS_MULTIPROC_DIR`, ...) is logged as a warning (the first time, then at most once
every `WARN_EVERY` seconds, with how many failed in between) and the request goes on; a
scrape that cannot be answered is `MetricsUnavailable`.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ParamSpec

log = logging.getLogger("dingmw")
P = ParamSpec("P")

MAX_LABEL_VALUES = 64
OTHER = "other"
DINGTALK_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
STORE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
WARN_EVERY = 300.0  # seconds between two warnings about failing metrics

_lock = threading.Lock()
_metrics: _Metrics | None = None


class MetricsUnavailable(Exception):
    """A scrape cannot be answered; the message says why (no path, no secret)."""


class _Warner:
    """Logs failing metrics at warning: the first failure, then at most one line every
    `WARN_EVERY` seconds, which says how many failed since the last one."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.last: float | None = None
        self.missed = 0
        self.lock = threading.Lock()

    def __call__(self, what: str, exc: BaseException) -> None:
        with self.lock:
            now = self.clock()
            if self.last is not None and now - self.last < WARN_EVERY:
                self.missed += 1
                return
            missed, self.missed, self.last = self.missed, 0, now
        more = f" ({missed} more failed since the last warning)" if missed else ""
        log.warning(
            "dingmw: metrics not recorded (%s): %s: %s; requests go on without them%s",
            what,
            type(exc).__name__,
            exc,
            more,
        )


warn = _Warner()


def _recording(fn: Callable[P, None]) -> Callable[P, None]:
    """A call site that never raises: a failure is `warn`ed, and the request goes on."""

    @functools.wraps(fn)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            fn(*args, **kwargs)
        except Exception as exc:  # metrics must never change a request's outcome
            warn(fn.__name__.lstrip("_"), exc)

    return guarded


class _Metrics:
    def __init__(self) -> None:
        from prometheus_client import Counter, Histogram

        self.started = Counter(
            "dingmw_logins_started", "Logins started (login page or redirect served)", ["flow"]
        )
        self.completed = Counter(
            "dingmw_logins_completed", "Logins that ended with a session", ["flow"]
        )
        self.failed = Counter(
            "dingmw_logins_failed", "Logins that ended with an error page", ["flow", "reason"]
        )
        self.dingtalk = Histogram(
            "dingmw_dingtalk_request_duration_seconds",
            "Calls to DingTalk (or the hub), by call and outcome",
            ["call", "outcome"],
            buckets=DINGTALK_BUCKETS,
        )
        self.dingtalk_errors = Counter(
            "dingmw_dingtalk_errors",
            "DingTalk answers that carried an error code (an HTTP 200 with errcode != 0 too)",
            ["call", "code"],
        )
        self.app_tokens = Counter(
            "dingmw_app_token_fetches", "DingTalk app tokens fetched", ["call", "outcome"]
        )
        self.store = Histogram(
            "dingmw_store_operation_duration_seconds",
            "Operations on the Redis store, by command and outcome",
            ["operation", "outcome"],
            buckets=STORE_BUCKETS,
        )
        self.store_errors = Counter(
            "dingmw_store_errors", "Redis operations that failed", ["operation"]
        )
        self.grants = Counter(
            "dingmw_hub_grants", "Token requests at the hub", ["grant_type", "result"]
        )
        self.revoked = Counter("dingmw_sessions_revoked", "Sessions revoked", ["scope"])
        self._seen: dict[str, set[str]] = {}
        self._seen_lock = threading.Lock()

    def bounded(self, label: str, value: str) -> str:
        """`value`, or `other` once `label` has `MAX_LABEL_VALUES` values already."""
        seen = self._seen.get(label)
        if seen is not None and value in seen:
            return value
        with self._seen_lock:
            seen = self._seen.setdefault(label, set())
            if value in seen:
                return value
            if len(seen) >= MAX_LABEL_VALUES:
                return OTHER
            seen.add(value)
            return value


def enable() -> None:
    """Start counting (once per process; later calls do nothing)."""
    global _metrics
    with _lock:
        if _metrics is None:
            _metrics = _Metrics()


def enabled() -> bool:
    return _metrics is not None


# --- the call sites ---------------------------------------------------------------------------


@_recording
def login_started(flow: str) -> None:
    if (m := _metrics) is not None:
        m.started.labels(m.bounded("flow", flow)).inc()


@_recording
def login_completed(flow: str) -> None:
    if (m := _metrics) is not None:
        m.completed.labels(m.bounded("flow", flow)).inc()


@_recording
def login_failed(flow: str, reason: str) -> None:
    if (m := _metrics) is not None:
        m.failed.labels(m.bounded("flow", flow), m.bounded("reason", reason)).inc()


@_recording
def app_token_fetched(call: str, ok: bool) -> None:
    if (m := _metrics) is not None:
        m.app_tokens.labels(m.bounded("call", call), "ok" if ok else "error").inc()


@_recording
def hub_grant(grant_type: str, result: str) -> None:
    if (m := _metrics) is not None:
        kind = grant_type if grant_type in ("authorization_code", "refresh_token") else OTHER
        m.grants.labels(kind, m.bounded("result", result)).inc()


@_recording
def session_revoked(scope: str) -> None:
    if (m := _metrics) is not None:
        m.revoked.labels(m.bounded("scope", scope)).inc()


@_recording
def dingtalk_observed(call: str, outcome: str, seconds: float) -> None:
    if (m := _metrics) is not None:
        m.dingtalk.labels(m.bounded("call", call), outcome).observe(seconds)


@_recording
def dingtalk_refused(call: str, code: str) -> None:
    """A DingTalk answer with an error code: oapi answers those with HTTP 200, which the
    duration histogram's `outcome` counts as `ok`."""
    if (m := _metrics) is not None:
        m.dingtalk_errors.labels(m.bounded("call", call), m.bounded("code", code)).inc()


@contextmanager
def store_operation(operation: str) -> Iterator[None]:
    """Time one Redis command: `with store_operation("GET"): ...`; an exception is an error."""
    if (m := _metrics) is None:
        yield
        return
    started = time.perf_counter()
    outcome = "error"
    try:
        yield
        outcome = "ok"
    finally:
        _store_observed(m, operation, outcome, time.perf_counter() - started)


@_recording
def _store_observed(m: _Metrics, operation: str, outcome: str, seconds: float) -> None:
    m.store.labels(operation, outcome).observe(seconds)
    if outcome == "error":
        m.store_errors.labels(operation).inc()


# --- exposition -------------------------------------------------------------------------------


def multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def exposition() -> tuple[bytes, str]:
    """The text a scrape gets, and its content type: every process's values in multiprocess
    mode (`PROMETHEUS_MULTIPROC_DIR`), else this process's registry. `MetricsUnavailable`
    when they cannot be read (the reason is logged, see `warn`)."""
    try:
        return _exposition()
    except MetricsUnavailable as exc:
        warn("exposition", exc)
        raise
    except Exception as exc:
        warn("exposition", exc)
        raise MetricsUnavailable(
            f"they could not be collected ({type(exc).__name__}; see the server log)"
        ) from exc


def _exposition() -> tuple[bytes, str]:
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry
    from prometheus_client import generate_latest as generate

    registry: Any = REGISTRY
    if multiprocess():
        directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
        if not os.path.isdir(directory):
            raise MetricsUnavailable("PROMETHEUS_MULTIPROC_DIR is not an existing directory")
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return generate(registry), CONTENT_TYPE_LATEST


def multiprocess_dir_problem(environ: Mapping[str, str] | None = None) -> str | None:
    """What is wrong with `PROMETHEUS_MULTIPROC_DIR` (set, but not an existing directory
    this process may write to), or None."""
    env = os.environ if environ is None else environ
    directory = env.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return None
    if not os.path.isdir(directory):
        return "is not an existing directory"
    if not os.access(directory, os.W_OK | os.X_OK):
        return "is a directory this process cannot write to"
    return None
