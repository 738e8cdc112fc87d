"""FastAPI behind dingmw (ASGI), with the `dingmw.fastapi` dependencies.

    python examples/fastapi_app.py          # against a fake DingTalk started here
    DINGMW_APP_KEY=... DINGMW_APP_SECRET=... DINGMW_SECRET_KEY=... python examples/fastapi_app.py

With no `DINGMW_APP_KEY` in the environment it starts the fake DingTalk on a
free port and points the settings at it, so it runs with no account. The app
is built by a factory, so a test imports this module without any `DINGMW_*`.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI

from dingmw import Identity, Settings
from dingmw.fastapi import (
    DingTalk,
    RequiredIdentity,
    current_identity,
    require,
    require_identity,
)

ADMIN_DEPTS = (100,)  # 张三's department in the fake organisation


def create_app(settings: Settings | None = None, **options: Any) -> FastAPI:
    """The application; `settings=None` reads `DINGMW_*` now (a `ConfigError` names a problem)."""
    started: list[str] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        started.append("up")  # the app's own start-up still runs behind dingmw
        yield

    app = FastAPI(lifespan=lifespan)
    app.state.started = started

    @app.get("/")
    async def home(me: Annotated[Identity, Depends(require_identity)]) -> dict[str, Any]:
        return {"hello": me.display_name, "userid": me.userid}

    @app.get("/admin", dependencies=[Depends(require(depts=ADMIN_DEPTS))])
    async def admin() -> str:
        return "admin area"

    @app.get("/health")
    async def health(me: Annotated[Identity | None, Depends(current_identity)]) -> dict[str, Any]:
        return {"ok": True, "who": me.unionid if me else None}  # public: `me` may be None

    @app.get("/health/me")
    async def health_me(me: RequiredIdentity) -> dict[str, str]:
        return {"checked_by": me.display_name}  # public path, but this one wants a person

    DingTalk(app, settings, **options)
    return app


def settings() -> Settings:
    if "DINGMW_APP_KEY" in os.environ:
        return Settings.from_env()
    import dataclasses

    from dingmw.demo import fake_settings, start_fake

    return dataclasses.replace(
        fake_settings(start_fake()), public_paths=("/health", "/health/*"), enrich="detail"
    )


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(create_app(settings()), host="127.0.0.1", port=int(os.environ.get("PORT", "8000")))
