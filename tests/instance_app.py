"""A site for the multi-process tests: `uvicorn tests.instance_app:app` with DINGMW_* set.

`/private` answers the identity as JSON; `/health` is public."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from dingmw import ASGIMiddleware, get_identity


async def private(request: Request) -> JSONResponse:
    identity = get_identity(request)
    return JSONResponse(identity.to_dict() if identity else None)


async def health(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


app = ASGIMiddleware(Starlette(routes=[Route("/private", private), Route("/health", health)]))
