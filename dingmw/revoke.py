"""Revoke sessions from outside a request: for an admin tool, a script or another service.

    from dingmw.revoke import revoke_everywhere
    revoke_everywhere("the-unionid")              # settings and store from DINGMW_*

logs a person out of every site that shares the store (`DINGMW_STORE_URL`)
and the audience (`DINGMW_SESSION_AUDIENCE`, or the site's own) with the
settings given: each site refuses the person's sessions issued until now at
its next re-check (`DINGMW_SESSION_RECHECK`, 60 seconds by default). A new
login afterwards works as usual. `arevoke_everywhere` does the same with an
async store. Inside a flow (the hub's logout, say) use
`Core.revoke_everywhere` or `dingmw.core.revocation.revoke_person`.
"""

from __future__ import annotations

import time

import httpx

from .config import Settings
from .core.drive import AsyncRunner, SyncRunner
from .core.effects import Flow
from .core.revocation import hub_audience, revoke_person, site_audience
from .stores import AsyncStore, Store, open_stores

__all__ = ["arevoke_everywhere", "hub_audience", "revoke_everywhere"]


class _NoHTTP:
    """Revocation calls no one."""

    def send(self, request: httpx.Request) -> httpx.Response:  # pragma: no cover - never
        raise RuntimeError("revocation makes no HTTP call")


class _AsyncNoHTTP:
    async def send(self, request: httpx.Request) -> httpx.Response:  # pragma: no cover
        raise RuntimeError("revocation makes no HTTP call")


def _revocation(
    unionid: str, settings: Settings, audience: str | None, now: float | None
) -> Flow[None]:
    """What both functions run: the person's sessions issued until `now` (default: now)
    revoked under `audience` (default: the one of `settings`)."""
    return revoke_person(
        unionid,
        audience or site_audience(settings),
        time.time() if now is None else now,
        settings.session_max_age,
    )


def revoke_everywhere(
    unionid: str,
    settings: Settings | None = None,
    *,
    store: Store | None = None,
    audience: str | None = None,
    now: float | None = None,
) -> None:
    """Revoke every session of `unionid` issued until now, on every site of the audience.

    `audience` is an audience id (default: the one of `settings`; for the sites
    that log in through a hub, `hub_audience(hub_url)`). Raises `StoreError`
    when the store cannot be reached.
    """
    settings = settings if settings is not None else Settings.from_env()
    store = store if store is not None else open_stores(settings.store_url)[0]
    SyncRunner(_NoHTTP(), store).run(_revocation(unionid, settings, audience, now))


async def arevoke_everywhere(
    unionid: str,
    settings: Settings | None = None,
    *,
    store: AsyncStore | None = None,
    audience: str | None = None,
    now: float | None = None,
) -> None:
    """`revoke_everywhere` with an async store."""
    settings = settings if settings is not None else Settings.from_env()
    store = store if store is not None else open_stores(settings.store_url)[1]
    await AsyncRunner(_AsyncNoHTTP(), store).run(_revocation(unionid, settings, audience, now))
