"""The dingmw hub: one DingTalk login in front of many sites (CONTRACT §6)."""

from __future__ import annotations

from typing import Any

from ..config import Settings
from .app import Hub
from .core import HubCore


def create_app(settings: Settings | None = None, **kwargs: Any) -> Hub:
    """The hub as an ASGI app; `settings=None` reads `DINGMW_*` from the environment.

    Keyword arguments (`transport=`, `client=`, `store=`, `clock=`) are passed to `Hub`.
    """
    return Hub(settings if settings is not None else Settings.from_env(), **kwargs)


__all__ = ["Hub", "HubCore", "create_app"]
