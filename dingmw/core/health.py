"""Health, readiness and metrics: `/dingtalk/healthz`, `/dingtalk/readyz` and
`/dingtalk/metrics`, for the middleware and the hub.

`healthz` says the process answers: no I/O, no session, nothing to configure.
`readyz` says it can serve logins: it pings the store (`DINGMW_STORE_URL`) and gives up
after `READY_TIMEOUT` seconds, so a probe never hangs on a Redis that does not answer.
A 503 names what is down (`store`), never where it is.
`metrics` (with `DINGMW_METRICS=1`) is Prometheus text (`dingmw.metrics`), behind
`Authorization: Bearer <DINGMW_METRICS_TOKEN>` when that is set (the scheme in any case,
extra spaces ignored); it reads this process's counters (or, in multiprocess mode, every
worker's files), nothing over the network. When
they cannot be read it is a `503 {"error": "metrics_unavailable", "detail": ...}` that says
why (the `dingmw` logger has the whole error); logins are never affected.
"""

from __future__ import annotations

import hmac
import logging

from .. import metrics
from ..config import Settings
from ..errors import StoreError
from .effects import Flow, store_ping
from .http import WebRequest, WebResponse
from .responses import NO_STORE, json_response

READY_TIMEOUT = 1.0

log = logging.getLogger("dingmw")

HEALTHY = json_response(200, {"status": "ok"})


def healthz() -> WebResponse:
    return HEALTHY


def readyz(timeout: float = READY_TIMEOUT) -> Flow[WebResponse]:
    try:
        yield from store_ping(timeout)
    except StoreError as exc:
        log.warning("dingmw: not ready: %s", exc.detail)
        return json_response(503, {"status": "unavailable", "down": ["store"]})
    return json_response(200, {"status": "ok", "store": "ok"})


def bearer_matches(authorization: str, token: str) -> bool:
    """`Authorization: Bearer <token>`, its scheme in any case (RFC 7235 §2.1) and spaces
    around either part ignored; the token compared in constant time."""
    parts = authorization.split(None, 1)
    if len(parts) != 2 or parts[0].lower() != "bearer":
        return False
    return hmac.compare_digest(parts[1].strip().encode(), token.encode())


def metrics_page(settings: Settings, req: WebRequest) -> WebResponse:
    if not settings.metrics:
        return json_response(404, {"error": "not_found"})
    token = settings.metrics_token
    if token is not None and not bearer_matches(req.headers.get("authorization", ""), token):
        challenge = ("www-authenticate", 'Bearer realm="dingmw metrics"')
        return json_response(401, {"error": "unauthorized"}, (challenge,))
    try:
        body, content_type = metrics.exposition()
    except metrics.MetricsUnavailable as exc:
        return json_response(503, {"error": "metrics_unavailable", "detail": str(exc)})
    return WebResponse(status=200, headers=(("content-type", content_type), NO_STORE), body=body)
