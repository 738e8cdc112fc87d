"""P4's second reference: the hub's Redis round trips for one operation behind a bare route.

    uvicorn redis_http:app --app-dir bench    (BENCH_REDIS: Redis URL; BENCH_TRIPS: a folder)

`GET /NAME` replays the round trips in `BENCH_TRIPS/NAME.json` (as `redis_ceiling.py` does, over
one `redis.asyncio` client with the hub store's options) and answers a token-sized JSON body,
through Starlette, served like `dingmw hub` but without an access log. Its rate is what any hub
on this stack could serve if an operation cost nothing but HTTP and its round trips to Redis.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import redis.asyncio
from redis_ceiling import Trips, encoded, one_operation
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

FOLDER = Path(os.environ.get("BENCH_TRIPS", "."))
ANSWER = {
    "access_token": "a" * 43,
    "token_type": "Bearer",
    "expires_in": 3600,
    "refresh_token": "r" * 43,
}
_client: redis.asyncio.Redis | None = None
_trips: dict[str, Trips] = {}


def trips(name: str) -> Trips:
    if name not in _trips:
        _trips[name] = encoded(json.loads((FOLDER / f"{name}.json").read_text(encoding="utf-8")))
    return _trips[name]


async def replay(request: Request) -> Response:
    global _client
    if _client is None:
        _client = redis.asyncio.Redis.from_url(os.environ["BENCH_REDIS"], decode_responses=True)
    await one_operation(_client, trips(request.path_params["name"]))
    return JSONResponse(ANSWER)


app = Starlette(routes=[Route("/{name}", replay)])
