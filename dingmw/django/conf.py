"""dingmw's settings in a Django project.

`DINGMW_*` values come from the Django settings module, else from the environment,
with the same names and meanings as everywhere else (docs/configuration.md).
`DINGMW_DJANGO` (a dict in the settings module) says how a DingTalk person becomes a
Django user:

    DINGMW_DJANGO = {
        "USERNAME": "userid",       # the userid when known, else the unionid; or "unionid"
        "CREATE_USERS": True,       # create a User on a person's first visit
        "STAFF_USERS": [...],       # userids or unionids: is_staff
        "STAFF_DEPTS": [...],       # DingTalk department ids (DINGMW_ENRICH=detail): is_staff
        "SUPERUSER_USERS": [...],   # is_superuser (and is_staff)
        "SUPERUSER_DEPTS": [...],
    }

When none of the four lists is given, dingmw leaves `is_staff` and `is_superuser` as an
administrator set them; when any is, every login sets both from the lists.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from ..access import Access
from ..config import Settings, env_text
from ..errors import ConfigError

OPTIONS = "DINGMW_DJANGO"
_KEYS = {
    "USERNAME",
    "CREATE_USERS",
    "STAFF_USERS",
    "STAFF_DEPTS",
    "SUPERUSER_USERS",
    "SUPERUSER_DEPTS",
}


def dingmw_settings() -> Settings:
    """`Settings` from the Django settings' `DINGMW_*` values over the environment."""
    from django.conf import settings as django_settings

    env = dict(os.environ)
    for name in dir(django_settings):
        if name.startswith("DINGMW_") and name != OPTIONS:
            value = getattr(django_settings, name)
            env[name] = env_text(value)
    return Settings.from_env(env)


@dataclasses.dataclass(frozen=True, slots=True)
class UserOptions:
    """`DINGMW_DJANGO`, checked."""

    username: str = "userid"
    create_users: bool = True
    staff: Access = dataclasses.field(default_factory=Access)
    superusers: Access = dataclasses.field(default_factory=Access)

    @property
    def manages_flags(self) -> bool:
        return any(
            (self.staff.users, self.staff.depts, self.superusers.users, self.superusers.depts)
        )


def user_options() -> UserOptions:
    from django.conf import settings as django_settings

    raw: Any = getattr(django_settings, OPTIONS, {}) or {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{OPTIONS} must be a dict")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise ConfigError(f"{OPTIONS}: unknown key(s) {', '.join(unknown)}")
    username = raw.get("USERNAME", "userid")
    if username not in ("userid", "unionid"):
        raise ConfigError(f"{OPTIONS}['USERNAME'] must be 'userid' or 'unionid'")
    try:
        staff = Access.of(users=raw.get("STAFF_USERS", ()), depts=raw.get("STAFF_DEPTS", ()))
        superusers = Access.of(
            users=raw.get("SUPERUSER_USERS", ()), depts=raw.get("SUPERUSER_DEPTS", ())
        )
    except (TypeError, ValueError):
        raise ConfigError(
            f"{OPTIONS}: *_USERS must be lists of userids or unionids, *_DEPTS lists of numbers"
        ) from None
    return UserOptions(
        username=username,
        create_users=bool(raw.get("CREATE_USERS", True)),
        staff=staff,
        superusers=superusers,
    )


def matches(access: Access, identity: Any) -> bool:
    """Whether a person is named by the users or the departments of `access` (either one)."""
    users = access.users and bool({identity.unionid, identity.userid} & access.users)
    depts = access.depts and bool(set(identity.dept_ids) & access.depts)
    return bool(users or depts)
