"""The hub as an ASGI app: thin glue around `HubCore`, which decides everything.

The glue turns a scope into a `WebRequest` (reading the body only where the
route needs it, at most `MAX_BODY` + 1 bytes), asks `HubCore.decide`, runs an
`Exchange`'s flow with the async driver, and sends the response.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable

import httpx

from ..asgi import AsyncEffects, Receive, Scope, Send, request_from_scope, send_response
from ..config import Settings
from ..core.http import INTERNAL_ERROR
from ..core.outcome import Exchange, Forward, Respond
from ..errors import BadRequestError
from ..rendering import renderer
from ..session_cache import VerifiedSessions
from ..stores import AsyncStore
from .core import MAX_BODY, HubCore, HubDecision
from .settings import HubSettings

log = logging.getLogger("dingmw")


class Hub:
    """The hub as an ASGI app; build it with `dingmw.hub.create_app(settings)`."""

    def __init__(
        self,
        settings: Settings,
        hub_settings: HubSettings | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        client: httpx.AsyncClient | None = None,
        store: AsyncStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        if hub_settings is None:
            from . import hub_settings_for

            hub_settings = hub_settings_for(settings)
        self.hub_settings = hub_settings
        render = renderer(settings.templates_dir)  # DINGMW_TEMPLATES_DIR, as for a site
        self.core = HubCore(
            settings, hub_settings, clock=clock, cache=VerifiedSessions(), render=render
        )
        self.effects = AsyncEffects(settings, transport=transport, client=client, store=store)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, self.effects.closing_on_shutdown(send))
            return
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1008})
            return
        try:
            req = request_from_scope(scope)
            if self.core.reads_body(req):
                req = dataclasses.replace(req, body=await _read_body(receive, MAX_BODY + 1))
            decision: HubDecision = self.core.decide(req)
        except Exception:
            log.exception("dingmw hub: internal error while deciding a request")
            decision = Respond(INTERNAL_ERROR)
        if isinstance(decision, Exchange):
            outcome = await self.effects.run(decision.flow)
            if isinstance(outcome, Forward):  # a re-checked session, but no app behind the hub
                outcome = self.core.core.error(req, BadRequestError("not_found"), status=404)
            response = outcome
        else:
            response = decision.response
        await send_response(response, send, head=scope.get("method") == "HEAD")


async def _read_body(receive: Receive, limit: int) -> bytes:
    """The request body, cut at `limit` bytes (the core refuses a body that long)."""
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk: bytes = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)[:limit]


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
