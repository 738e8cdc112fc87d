"""What the core tells an adapter to do with a request."""

from __future__ import annotations

import dataclasses
from typing import TypeAlias

from ..identity import Identity
from .effects import Flow
from .http import WebResponse


@dataclasses.dataclass(frozen=True, slots=True)
class Forward:
    """Call the wrapped app; `identity` is None for an anonymous request to a public path."""

    identity: Identity | None


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
