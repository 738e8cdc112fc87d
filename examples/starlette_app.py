"""Starlette (or FastAPI) behind dingmw (ASGI).

    python examples/starlette_app.py        # against a fake DingTalk started here
    DINGMW_APP_KEY=... DINGMW_APP_SECRET=... DINGMW_SECRET_KEY=... python examples/starlette_app.py

With no `DINGMW_APP_KEY` in the environment it starts the fake DingTalk on a
free port and points the settings at it, so it runs with no account.
"""

from __future__ import annotations

import html
import os

import uvicorn
from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse
from starlette.routing import Route

from dingmw import ASGIMiddleware, Settings


async def home(request: Request) -> HTMLResponse:
    user = request.user  # set by the middleware, like Starlette's AuthenticationMiddleware
    return HTMLResponse(
        f"<h1>你好, {html.escape(user.display_name)}</h1>"
        f"<p>userid {html.escape(str(user.dingtalk.userid))}, "
        f"unionid {html.escape(user.dingtalk.unionid)}</p>"
        '<p><a href="/dingtalk/me">/dingtalk/me</a> · <a href="/dingtalk/logout">log out</a></p>'
    )


async def health(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


@requires("authenticated", redirect="login")
async def report(request: Request) -> PlainTextResponse:
    # A public path (DINGMW_PUBLIC_PATHS=/public/*) whose view wants a person: Starlette sends
    # a browser to the route named "login" with ?next=<this page>; after the scan it lands here.
    return PlainTextResponse(f"report for {request.user.display_name}")


async def login(request: Request) -> RedirectResponse:
    # The route `requires(redirect="login")` names: hand over to dingmw's login page.
    return RedirectResponse(f"/dingtalk/login?{request.url.query}", status_code=302)


inner = Starlette(
    routes=[
        Route("/", home),
        Route("/health", health),
        Route("/public/report", report),
        Route("/login", login, name="login"),
    ]
)


def settings() -> Settings:
    if "DINGMW_APP_KEY" in os.environ:
        return Settings.from_env()
    import dataclasses

    from dingmw.demo import fake_settings, start_fake

    return dataclasses.replace(
        fake_settings(start_fake()), public_paths=("/health", "/public/*", "/login")
    )


if __name__ == "__main__":
    app = ASGIMiddleware(inner, settings())
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ.get("PORT", "8000")))
