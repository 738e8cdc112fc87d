"""dingmw: log in with DingTalk in front of any WSGI or ASGI app.

`import dingmw` is cheap: the adapters (and what they import: httpx,
Jinja2, Starlette for ASGI) load on first use of `ASGIMiddleware` or
`WSGIMiddleware`, so a WSGI application never imports Starlette.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import Settings
from .errors import (
    BadRequestError,
    ConfigError,
    DingmwError,
    ForbiddenError,
    LoginError,
    StateError,
    StoreError,
    UpstreamError,
)
from .identity import Identity, get_identity
from .logs import install as _install_log_filters

if TYPE_CHECKING:
    from .asgi import ASGIMiddleware
    from .wsgi import WSGIMiddleware

__version__ = "0.1.0"

_install_log_filters()

_ADAPTERS = {"ASGIMiddleware": "asgi", "WSGIMiddleware": "wsgi"}


def __getattr__(name: str) -> Any:
    module = _ADAPTERS.get(name)
    if module is None:
        raise AttributeError(f"module 'dingmw' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "ASGIMiddleware",
    "BadRequestError",
    "ConfigError",
    "DingmwError",
    "ForbiddenError",
    "Identity",
    "LoginError",
    "Settings",
    "StateError",
    "StoreError",
    "UpstreamError",
    "WSGIMiddleware",
    "__version__",
    "get_identity",
]
