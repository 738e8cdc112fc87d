"""OpenID Connect claims of a person, by scope (OpenID Connect Core 1.0 §5.1, §5.4).

`sub` is stable per person: the userid when the hub knows it (enrichment or
in-client login), else the unionid; the seed's `username` is the same value.
The DingTalk fields keep their own names.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..identity import Identity

# Standard and DingTalk claims each scope gives (besides `sub` and `unionid`, always given).
SCOPE_CLAIMS: dict[str, tuple[str, ...]] = {
    "openid": ("sub", "unionid"),
    "profile": (
        "name",
        "preferred_username",
        "nickname",
        "picture",
        "userid",
        "nick",
        "corp_id",
        "title",
        "job_number",
        "dept_ids",
    ),
    "email": ("email",),
    "phone": ("phone_number",),
}


def all_claims(identity: Identity) -> dict[str, Any]:
    return {
        "sub": identity.remote_user,
        "unionid": identity.unionid,
        "name": identity.name or identity.nick,
        "preferred_username": identity.remote_user,
        "nickname": identity.nick,
        "picture": identity.avatar_url,
        "userid": identity.userid,
        "nick": identity.nick,
        "corp_id": identity.corp_id,
        "title": identity.title,
        "job_number": identity.job_number,
        "dept_ids": list(identity.dept_ids),
        "email": identity.email,
        "phone_number": identity.mobile,
    }


def claims(identity: Identity, scopes: Iterable[str]) -> dict[str, Any]:
    """The claims `scopes` give (OpenID Connect Core §5.4); unknown values are left out."""
    every = all_claims(identity)
    wanted = {"sub", "unionid"}
    for scope in scopes:
        wanted.update(SCOPE_CLAIMS.get(scope, ()))
    return {k: v for k, v in every.items() if k in wanted and v not in (None, "", [])}


def supported_claims() -> list[str]:
    return sorted({claim for names in SCOPE_CLAIMS.values() for claim in names})
