"""Who may come in: the one allow-list rule, for the whole site and for one view.

The middleware's core applies it to the `DINGMW_ALLOWED_*` lists at every login
and re-check (`Core.admit`); the integrations' `require(users=, depts=, corps=)`
apply it to one view. Each list that is given must match (a person, one of their
departments, their organisation). A refusal is a `ForbiddenError` the middleware's
core turns into its 403 page or JSON.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from .errors import ForbiddenError
from .identity import Identity


@dataclasses.dataclass(frozen=True, slots=True)
class Access:
    """People (userids or unionids), DingTalk department ids and corp ids allowed in."""

    users: frozenset[str] = frozenset()
    depts: frozenset[int] = frozenset()
    corps: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls, *, users: Iterable[str] = (), depts: Iterable[int] = (), corps: Iterable[str] = ()
    ) -> Access:
        return cls(frozenset(users), frozenset(int(d) for d in depts), frozenset(corps))

    def refusal(self, identity: Identity) -> ForbiddenError | None:
        """None when `identity` may pass, else the error naming why not."""
        who = {"who": identity.display_name, "unionid": identity.unionid}
        if self.corps and identity.corp_id not in self.corps:
            return ForbiddenError("corp_not_allowed", **who)
        if self.users and not ({identity.unionid, identity.userid} & self.users):
            return ForbiddenError("user_not_allowed", **who)
        if self.depts and not (set(identity.dept_ids) & self.depts):
            return ForbiddenError("dept_not_allowed", **who)
        return None
