"""dingmw: log in with DingTalk in front of any WSGI or ASGI app."""

from .asgi import ASGIMiddleware
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
from .wsgi import WSGIMiddleware

__version__ = "0.1.0"

_install_log_filters()

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
