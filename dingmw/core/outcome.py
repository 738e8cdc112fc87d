"""What the core tells an adapter to do with a request."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeAlias

from ..identity import Identity
from .effects import Flow
from .http import WebResponse


@dataclasses.dataclass(frozen=True, slots=True)
class Forward:
    """Call the wrapped app; `identity` is None for an anonymous request to a public path.

    `extra` is the adapter's to fill: what it adds to the request for this identity,
    built the first time and reused on every request that carries the same verified
    session (the hot path's forward is one per cached session, `core.session.Entry`).
    """

    identity: Identity | None
    extra: dict[str, Any] = dataclasses.field(
        default_factory=dict, compare=False, hash=False, repr=False
    )


@dataclasses.dataclass(frozen=True, slots=True)
class Respond:
    """Send `response` and do not call the wrapped app."""

    response: WebResponse


@dataclasses.dataclass(frozen=True, slots=True)
class Exchange:
    """Run `flow` with a driver (DingTalk calls, store operations), then send its response.

    A flow that re-checks a session may instead end with a `Forward`: then the
    request goes on to the wrapped app, as if `decide` had forwarded it.
    """

    flow: Flow[WebResponse | Forward]


Decision: TypeAlias = Forward | Respond | Exchange
