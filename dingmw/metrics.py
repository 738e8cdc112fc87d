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
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

MAX_LABEL_VALUES = 64
OTHER = "other"
DINGTALK_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
STORE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_lock = threading.Lock()
_metrics: _Metrics | None = None


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


def login_started(flow: str) -> None:
    if (m := _metrics) is not None:
        m.started.labels(m.bounded("flow", flow)).inc()


def login_completed(flow: str) -> None:
    if (m := _metrics) is not None:
        m.completed.labels(m.bounded("flow", flow)).inc()


def login_failed(flow: str, reason: str) -> None:
    if (m := _metrics) is not None:
        m.failed.labels(m.bounded("flow", flow), m.bounded("reason", reason)).inc()


def app_token_fetched(call: str, ok: bool) -> None:
    if (m := _metrics) is not None:
        m.app_tokens.labels(m.bounded("call", call), "ok" if ok else "error").inc()


def hub_grant(grant_type: str, result: str) -> None:
    if (m := _metrics) is not None:
        kind = grant_type if grant_type in ("authorization_code", "refresh_token") else OTHER
        m.grants.labels(kind, m.bounded("result", result)).inc()


def session_revoked(scope: str) -> None:
    if (m := _metrics) is not None:
        m.revoked.labels(m.bounded("scope", scope)).inc()


def dingtalk_observed(call: str, outcome: str, seconds: float) -> None:
    if (m := _metrics) is not None:
        m.dingtalk.labels(m.bounded("call", call), outcome).observe(seconds)


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
        m.store.labels(operation, outcome).observe(time.perf_counter() - started)
        if outcome == "error":
            m.store_errors.labels(operation).inc()


# --- exposition -------------------------------------------------------------------------------


def multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def exposition() -> tuple[bytes, str]:
    """The text a scrape gets, and its content type: every process's values in multiprocess
    mode (`PROMETHEUS_MULTIPROC_DIR`), else this process's registry."""
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry
    from prometheus_client import generate_latest as generate

    registry: Any = REGISTRY
    if multiprocess():
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate(registry), CONTENT_TYPE_LATEST
