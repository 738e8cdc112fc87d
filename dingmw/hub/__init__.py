"""The dingmw hub: one DingTalk login in front of many sites (seed 002, and OpenID Connect).

`create_app(settings, hub_settings)` is the ASGI app; `HubSettings` its own settings
(`DINGMW_HUB_*`). Importing this package (or `dingmw.hub.settings`) imports no server code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .settings import HubClient, HubSettings

if TYPE_CHECKING:
    from ..config import Settings
    from .app import Hub
    from .core import HubCore


def create_app(
    settings: Settings | None = None, hub_settings: HubSettings | None = None, **kwargs: Any
) -> Hub:
    """The hub as an ASGI app. `settings=None` reads `DINGMW_*` from the environment;
    `hub_settings=None` reads `DINGMW_HUB_*` (or, for settings built in Python with the older
    `hub_clients=…` fields, takes those).

    Keyword arguments (`transport=`, `client=`, `store=`, `clock=`) are passed to `Hub`.
    """
    from ..config import Settings
    from .app import Hub

    settings = settings if settings is not None else Settings.from_env()
    return Hub(settings, hub_settings or hub_settings_for(settings), **kwargs)


def hub_settings_for(settings: Settings) -> HubSettings:
    """`HubSettings` from the environment, or from the older fields of a `Settings`."""
    if settings.hub_clients:
        return HubSettings(
            clients=settings.hub_clients,
            code_ttl=settings.hub_code_ttl,
            token_ttl=settings.hub_token_ttl,
            refresh_ttl=settings.hub_refresh_ttl,
        )
    return HubSettings.from_env()


def __getattr__(name: str) -> Any:
    if name == "Hub":
        from .app import Hub

        return Hub
    if name == "HubCore":
        from .core import HubCore

        return HubCore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Hub", "HubClient", "HubCore", "HubSettings", "create_app", "hub_settings_for"]
