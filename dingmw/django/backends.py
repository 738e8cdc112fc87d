"""`DingTalkBackend`: a DingTalk identity becomes a Django `User`.

`authenticate(request, dingtalk_identity=identity)` finds the user by username (the
userid when dingmw knows it, else the unionid; `DINGMW_DJANGO["USERNAME"]`), creates it
on the first visit with an unusable password, and fills the name and email. With staff
or superuser lists in `DINGMW_DJANGO` it sets `is_staff` / `is_superuser` from them on
every login. Permissions and groups work as with Django's `ModelBackend`; a password
never authenticates through this backend.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest

from ..identity import Identity
from .conf import matches, user_options


def username_of(identity: Identity, mode: str) -> str:
    if mode == "userid" and identity.userid:
        return identity.userid
    return identity.unionid


class DingTalkBackend(ModelBackend):
    """Logs in the person dingmw verified; never a username and password."""

    def authenticate(  # type: ignore[override]  # a different credential than ModelBackend's
        self,
        request: HttpRequest | None,
        dingtalk_identity: Identity | None = None,
        **credentials: Any,
    ) -> Any:
        if dingtalk_identity is None:
            return None
        options = user_options()
        model: Any = get_user_model()
        name = username_of(dingtalk_identity, options.username)
        field: str = model.USERNAME_FIELD
        try:
            user = model._default_manager.get_by_natural_key(name)
        except model.DoesNotExist:
            if not options.create_users:
                return None
            user = model(**{field: name})
            user.set_unusable_password()
        self.fill(user, dingtalk_identity, options)
        user.save()
        return user if self.user_can_authenticate(user) else None

    def fill(self, user: Any, identity: Identity, options: Any) -> None:
        """Name, email and (with lists configured) the staff and superuser flags."""
        if hasattr(user, "first_name"):
            user.first_name = (identity.name or identity.nick or "")[:150]
        if hasattr(user, "email") and identity.email:
            user.email = identity.email
        if options.manages_flags:
            superuser = matches(options.superusers, identity)
            user.is_superuser = superuser
            user.is_staff = superuser or matches(options.staff, identity)
