"""Health and readiness: `/dingtalk/healthz` and `/dingtalk/readyz`, for the middleware and
the hub.

`healthz` says the process answers: no I/O, no session, nothing to configure.
`readyz` says it can serve logins: it pings the store (`DINGMW_STORE_URL`) and gives up
after `READY_TIMEOUT` seconds, so a probe never hangs on a Redis that does not answer.
A 503 names what is down (`store`), never where it is.
"""

from __future__ import annotations

import logging

from ..errors import StoreError
from .effects import Flow, store_ping
from .http import WebResponse
from .responses import json_response

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
