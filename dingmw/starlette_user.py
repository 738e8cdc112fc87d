"""Starlette's `request.user` and `request.auth` for a DingTalk identity.

The ASGI adapter fills `scope["user"]` and `scope["auth"]` with these, so
Starlette's `request.user`, `request.auth` and `@requires(...)` work without
its `AuthenticationMiddleware`. Only the ASGI side imports this module (and
Starlette); the core and the WSGI adapter never do.
"""

from __future__ import annotations

from typing import Any

from starlette.authentication import AuthCredentials, BaseUser, UnauthenticatedUser

from .identity import Identity


class DingTalkUser(BaseUser):
    """Starlette's `request.user` for a logged-in person.

    `request.user.dingtalk` is the `Identity`; its fields are also readable
    on the user itself (`request.user.userid`, `request.user.email`, ...).
    """

    __slots__ = ("dingtalk",)

    def __init__(self, identity: Identity) -> None:
        self.dingtalk = identity

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.dingtalk.display_name

    @property
    def identity(self) -> str:
        return self.dingtalk.unionid

    def __getattr__(self, name: str) -> Any:
        return getattr(self.dingtalk, name)

    def __repr__(self) -> str:
        return f"DingTalkUser(unionid={self.dingtalk.unionid!r})"


AUTHENTICATED = AuthCredentials(["authenticated"])
ANONYMOUS_AUTH = AuthCredentials()
ANONYMOUS_USER = UnauthenticatedUser()
