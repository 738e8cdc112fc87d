"""What the drivers observe about each call to DingTalk (or the hub): its latency and outcome,
counted (`metrics`, when on) and, when it failed, logged as one line with the call, the
outcome, the latency and the request id (`logs.fields`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from . import metrics
from .core.effects import CALL_EXTENSION
from .logs import fields

log = logging.getLogger("dingmw")


class DingTalkCall:
    """What `dingtalk_call` measures; `done(response)` records the HTTP outcome."""

    __slots__ = ("outcome",)

    def __init__(self) -> None:
        self.outcome = "network_error"

    def done(self, response: httpx.Response) -> httpx.Response:
        status = response.status_code
        self.outcome = "ok" if status < 400 else f"http_{status // 100}xx"
        return response


@contextmanager
def dingtalk_call(request: httpx.Request) -> Iterator[DingTalkCall]:
    """In a driver: `with dingtalk_call(r) as c: return c.done(send(r))`. A timeout or a
    network error raised inside is its outcome."""
    measured = DingTalkCall()
    started = time.perf_counter()
    try:
        yield measured
    except httpx.TimeoutException:
        measured.outcome = "timeout"
        raise
    finally:
        seconds = time.perf_counter() - started
        call = str(request.extensions.get(CALL_EXTENSION) or metrics.OTHER)
        metrics.dingtalk_observed(call, measured.outcome, seconds)
        if measured.outcome != "ok":
            latency_ms = round(seconds * 1000, 1)
            log.warning(
                "dingmw: DingTalk call %s failed: %s after %.0f ms",
                call,
                measured.outcome,
                latency_ms,
                extra=fields(
                    event="dingtalk_call",
                    call=call,
                    outcome=measured.outcome,
                    latency_ms=latency_ms,
                ),
            )
