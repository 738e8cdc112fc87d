"""The errors dingmw raises, and the HTTP status each one becomes.

`ConfigError` is raised at start-up. The others are raised inside a login
flow and turned into a page by the core (`core.flow`), never a traceback:
`LoginError` subclasses carry a machine-readable `reason` (used to pick the
localised text of the error page) and never a secret.
"""

from __future__ import annotations

from collections.abc import Sequence


class DingmwError(Exception):
    """Base class of every error dingmw raises on purpose."""


class ConfigError(DingmwError, ValueError):
    """A `DINGMW_*` setting is missing or invalid. The message names the variable.

    `problems` holds each problem found (the message joins them with `; `).
    """

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.problems: tuple[str, ...] = tuple(problems) or (message,)


class LoginError(DingmwError):
    """A login cannot go on; `status` is the HTTP status of the page shown."""

    status = 400

    def __init__(self, reason: str, detail: str = "", **params: str) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.params = params


class StateError(LoginError):
    """The `state` of a callback is missing, unknown, expired, reused or from another browser."""

    status = 400


class BadRequestError(LoginError):
    """The request itself is malformed (a missing parameter, a wrong method)."""

    status = 400


class ForbiddenError(LoginError):
    """DingTalk identified the person, but they may not use this site."""

    status = 403


class UpstreamError(LoginError):
    """A call to DingTalk (or to the hub) failed: `call` names which one."""

    status = 502

    def __init__(self, call: str, detail: str = "", *, reason: str = "upstream") -> None:
        super().__init__(reason, detail, call=call)
        self.call = call


class StoreError(LoginError):
    """The shared store (Redis) cannot be reached; the request may be retried."""

    status = 503

    def __init__(self, detail: str = "") -> None:
        super().__init__("store_unavailable", detail)
