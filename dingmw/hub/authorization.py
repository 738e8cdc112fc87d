"""An authorization request a site made at `/authorize`, carried through the login.

When the person has no hub session yet, the request travels in the hub's
signed, browser-bound login state (`core.state`), so the callback knows what
it was for without parsing any URL again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from ..errors import BadRequestError, StateError

MAX_STATE = 512


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Authorization:
    """A checked authorization request: the client, where its code goes, the site's state."""

    client_id: str
    redirect_url: str
    state: str

    def dump(self) -> dict[str, str]:
        """For the login state (`PendingLogin.extra`)."""
        return {"c": self.client_id, "r": self.redirect_url, "s": self.state}

    @classmethod
    def load(cls, data: Mapping[str, str]) -> Authorization:
        try:
            return cls(client_id=data["c"], redirect_url=data["r"], state=data["s"])
        except KeyError:  # a login state written by another version
            raise StateError("state_unknown") from None


def seed_request(query: Mapping[str, str]) -> tuple[str | None, str | None, str]:
    """`client_id`, `redirect_url` and `state` of a seed 002 `/authorize` request."""
    state = query.get("state", "")
    if len(state) > MAX_STATE:
        raise BadRequestError("bad_request", "state is too long")
    return query.get("client_id"), query.get("redirect_url"), state
