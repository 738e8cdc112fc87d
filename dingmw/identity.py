"""Who is logged in: the `Identity` dataclass and how apps read it.

The wrapped app finds the identity under one key, `dingtalk.identity`, in the
ASGI scope or the WSGI environ. `get_identity()` reads it from any carrier.
This module imports no web framework (Starlette's `request.user` is in
`dingmw.starlette_user`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

IDENTITY_KEY = "dingtalk.identity"

_STR_FIELDS = (
    "openid",
    "nick",
    "userid",
    "name",
    "email",
    "mobile",
    "avatar_url",
    "corp_id",
    "title",
    "job_number",
)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Identity:
    """A DingTalk person, verified by one of the login flows.

    `unionid` is always present and is the stable key for a person across
    the apps of one developer organisation. The other fields are `None` (or
    empty) when the flow did not provide them.
    """

    unionid: str
    openid: str | None = None
    nick: str | None = None
    userid: str | None = None
    name: str | None = None
    email: str | None = None
    mobile: str | None = None
    avatar_url: str | None = None
    corp_id: str | None = None
    title: str | None = None
    job_number: str | None = None
    dept_ids: tuple[int, ...] = ()
    flow: str = ""

    @property
    def display_name(self) -> str:
        """The person's name, else their nick, else their unionid."""
        return self.name or self.nick or self.unionid

    @property
    def remote_user(self) -> str:
        """What `REMOTE_USER` holds: the userid when known, else the unionid."""
        return self.userid or self.unionid

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with every field (`dept_ids` as a list)."""
        data: dict[str, Any] = {"unionid": self.unionid}
        for name in _STR_FIELDS:
            data[name] = getattr(self, name)
        data["dept_ids"] = list(self.dept_ids)
        data["flow"] = self.flow
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Identity:
        """The inverse of `to_dict`; unknown keys are ignored, bad types raise `ValueError`."""
        if not isinstance(data, Mapping):
            raise ValueError("an identity must be a mapping")
        unionid = data.get("unionid")
        if not isinstance(unionid, str) or not unionid:
            raise ValueError("identity needs a non-empty 'unionid'")
        fields: dict[str, Any] = {}
        for name in _STR_FIELDS:
            value = data.get(name)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"identity field {name!r} must be a string")
            fields[name] = value
        depts = data.get("dept_ids") or ()
        if not isinstance(depts, list | tuple) or not all(
            isinstance(d, int) and not isinstance(d, bool) for d in depts
        ):
            raise ValueError("identity field 'dept_ids' must be a list of integers")
        flow = data.get("flow") or ""
        if not isinstance(flow, str):
            raise ValueError("identity field 'flow' must be a string")
        return cls(unionid=unionid, dept_ids=tuple(depts), flow=flow, **fields)


def __getattr__(name: str) -> Any:
    # Starlette's `request.user` types live in `dingmw.starlette_user`, imported only when
    # asked for: a WSGI application runs without Starlette installed.
    if name in ("DingTalkUser", "AUTHENTICATED", "ANONYMOUS_AUTH", "ANONYMOUS_USER"):
        from . import starlette_user

        return getattr(starlette_user, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get_identity(carrier: object) -> Identity | None:
    """The `Identity` of a request, or `None`.

    `carrier` may be an ASGI scope, a WSGI environ, a Starlette `Request`
    (anything with `.scope`) or a Werkzeug/Flask `Request` (anything with
    `.environ`).
    """
    mapping: object = carrier
    if not isinstance(carrier, Mapping):
        mapping = getattr(carrier, "scope", None)
        if not isinstance(mapping, Mapping):
            mapping = getattr(carrier, "environ", None)
    if not isinstance(mapping, Mapping):
        raise TypeError(
            "get_identity() takes an ASGI scope, a WSGI environ, or a Starlette/Werkzeug request"
        )
    value = mapping.get(IDENTITY_KEY)
    return value if isinstance(value, Identity) else None
