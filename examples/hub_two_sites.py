"""A hub and two sites on this machine, against a fake DingTalk.

    python examples/hub_two_sites.py

Open site A, log in with the fake QR (through the hub), then open site B: it logs you in
through the hub without a second scan. Each server is on its own port; cookies ignore
ports, so the hub and the sites use different cookie names.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from typing import Any

import uvicorn

from dingmw import ASGIMiddleware, Settings
from dingmw.demo import bind, example_app
from dingmw.hub import HubClient, HubSettings, create_app
from dingmw.testing import DEFAULT_APP_KEY, DEFAULT_APP_SECRET, FakeDingTalk

HOST = "127.0.0.1"


async def main() -> None:
    sockets = {name: bind(HOST, 0) for name in ("fake", "hub", "a", "b")}
    url = {name: f"http://{HOST}:{sock.getsockname()[1]}" for name, sock in sockets.items()}
    signing_key = secrets.token_urlsafe(48)  # instances of one app share their signing key
    site_secrets = {site: secrets.token_urlsafe(24) for site in ("a", "b")}
    fake = url["fake"]
    hub = create_app(
        Settings(
            app_key=DEFAULT_APP_KEY,
            app_secret=DEFAULT_APP_SECRET,
            secret_keys=(signing_key,),
            cookie_name="hub_session",
            enrich="detail",
            oapi_url=fake,
            api_url=fake,
            login_url=fake,
            login_script_url=f"{fake}/h5-dingtalk-login/ddlogin.js",
        ),
        HubSettings(
            clients=tuple(
                HubClient(
                    client_id=f"site-{site}",
                    client_secret=site_secrets[site],
                    redirect_urls=(f"{url[site]}/dingtalk/callback",),
                )
                for site in ("a", "b")
            ),
        ),
    )
    sites = {
        site: ASGIMiddleware(
            example_app(),
            Settings(
                flow="hub",
                hub_url=url["hub"],
                app_key=f"site-{site}",
                app_secret=site_secrets[site],
                secret_keys=(secrets.token_urlsafe(48),),
                cookie_name=f"site_{site}_session",
                public_paths=("/health",),
            ),
        )
        for site in ("a", "b")
    }
    apps: dict[str, Any] = {"fake": FakeDingTalk().asgi_app, "hub": hub, **sites}
    servers = [
        uvicorn.Server(uvicorn.Config(apps[name], log_level="warning", lifespan="off"))
        for name in sockets
    ]
    print(f"fake DingTalk {url['fake']}   hub {url['hub']}")
    print(f"Open site A: {url['a']}/   then site B: {url['b']}/   (Ctrl-C stops)", flush=True)
    await asyncio.gather(
        *(
            server.serve(sockets=[sock])
            for server, sock in zip(servers, sockets.values(), strict=True)
        )
    )


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
