"""Which site a session is for, and how sessions are revoked in the shared store.

**Audience.** Every session and login state names the site it was made for:
an *audience id*, a short hash of the audience's name. The name is
`DINGMW_SESSION_AUDIENCE` when set (sites that share it deliberately share
logins), else made of the app key, `DINGMW_BASE_URL` and the cookie name, so
two sites never accept each other's sessions by accident, even when they share
`DINGMW_SECRET_KEY`.

**Revocation.** Two kinds of store entries, each one key (no multi-key
command, so a Redis Cluster serves them as well as one Redis):

    session-revoked:<sid>                  "1"    until the session would have expired
    person-revoked:<hash(audience, uid)>   <ms>   sessions of that person issued at or
                                                  before <ms> are revoked ("everywhere")

A logout writes the first; "log out everywhere" (the person, an admin tool, or
the hub for the sites that log in through it) writes the second. Every site
reads them when it first verifies a session and then at most every
`DINGMW_SESSION_RECHECK` seconds per session and process.
"""

from __future__ import annotations

import hashlib

from .. import metrics
from ..config import Settings
from .effects import Flow, store_put, store_reads
from .signing import b64encode

CLOCK_SKEW = 60
# A person's "everywhere" entry outlives every session it revokes.
MIN_PERSON_TTL = 86400


def audience_id(name: str) -> str:
    """The short, fixed-length id of an audience name (what cookies carry)."""
    return b64encode(hashlib.sha256(b"dingmw/audience\0" + name.encode("utf-8")).digest()[:16])


def audience_name(settings: Settings) -> str:
    """`DINGMW_SESSION_AUDIENCE`, else this site's own name (app key, base URL, cookie name)."""
    if settings.session_audience:
        return settings.session_audience
    return f"site\n{settings.app_key}\n{settings.base_url or ''}\n{settings.cookie_name}"


def site_audience(settings: Settings) -> str:
    """The audience id of the sessions and login states this site issues and accepts."""
    return audience_id(audience_name(settings))


def hub_audience(hub_url: str) -> str:
    """The audience id a hub revokes under for the sites that log in through it.

    A site with `DINGMW_FLOW=hub` also honours "everywhere" revocations the hub
    at `DINGMW_HUB_URL` writes under this id (`revoke_person(unionid, hub_audience(url))`).
    """
    return audience_id(f"hub\n{hub_url.rstrip('/')}")


def session_key(sid: str) -> str:
    return f"session-revoked:{sid}"


def person_key(audience: str, unionid: str) -> str:
    digest = hashlib.sha256(f"{audience}\0{unionid}".encode()).hexdigest()[:32]
    return f"person-revoked:{digest}"


def revoke_session(sid: str, expires: float, now: float) -> Flow[None]:
    """Revoke one session (by id) until it would have expired anyway."""
    yield from store_put(session_key(sid), "1", max(1.0, expires - now + CLOCK_SKEW))
    metrics.session_revoked("session")


def revoke_person(unionid: str, audience: str, now: float, max_age: float) -> Flow[None]:
    """Revoke every session of `unionid` issued until `now` for `audience`, on every site.

    `max_age` is the longest session lifetime among the sites of the audience.
    """
    ttl = max(float(max_age), MIN_PERSON_TTL) + CLOCK_SKEW
    yield from store_put(person_key(audience, unionid), str(int(now * 1000)), ttl)
    metrics.session_revoked("person")


def is_revoked(sid: str, unionid: str, issued_ms: int, audiences: tuple[str, ...]) -> Flow[bool]:
    """Whether the store says this session was revoked: the session's own key and the
    person's under each audience, read together (one round trip to Redis)."""
    keys = (session_key(sid), *(person_key(audience, unionid) for audience in audiences))
    session, *people = yield from store_reads(keys)
    if session is not None:
        return True
    for before in people:
        if before is not None:
            try:
                if issued_ms <= int(before):
                    return True
            except ValueError:
                return True  # an entry we cannot read: err on the side of the revocation
    return False
