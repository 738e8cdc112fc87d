"""Cross-origin access to the hub's endpoints for programs (the Fetch standard's CORS).

A single-page app (a public client) calls `/token` and `/userinfo` from the
browser, so the browser asks the hub first (a preflight `OPTIONS`) and then
reads the answer only if the hub names the page's origin. The hub names:

* any origin for the discovery document and the JWKS (public metadata);
* for `/token` and `/userinfo`, the origins of the public clients' registered
  redirect URLs, and no other (a confidential client keeps its secret on a
  server, which needs no CORS).

No credentials (cookies) are ever allowed cross-origin: the endpoints take a
client id, a code or a token, never the hub session.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..core.http import Headers, WebRequest, WebResponse
from ..core.redirects import origin_of
from .errors import oauth_error
from .settings import HubClient

ANY = "any"
CLIENTS = "clients"
MAX_AGE = "600"
ALLOWED_HEADERS = "authorization, content-type"


class CrossOrigin:
    """Which origins may read which routes, and the headers that say so."""

    def __init__(self, clients: Iterable[HubClient]) -> None:
        # Registered redirect URLs are absolute http(s) URLs (checked at start-up).
        self.origins = frozenset(
            origin
            for client in clients
            if client.public
            for url in client.redirect_urls
            if (origin := origin_of(url)) is not None
        )

    def allowed(self, req: WebRequest, who: str) -> str | None:
        """The request's origin when `who` (ANY or CLIENTS) lets it read the answer."""
        origin = req.headers.get("origin", "")
        if not origin or origin == "null":
            return None
        if who == ANY:
            return "*"
        return origin if origin.lower() in self.origins else None

    def headers(self, req: WebRequest, who: str) -> Headers:
        """For an answer to a cross-origin request (nothing for a same-origin one)."""
        allowed = self.allowed(req, who)
        if allowed is None:
            return ()
        if allowed == "*":
            return (("access-control-allow-origin", "*"),)
        return (("access-control-allow-origin", allowed), ("vary", "Origin"))

    def preflight(self, req: WebRequest, who: str, methods: Iterable[str]) -> WebResponse:
        """The answer to `OPTIONS`: 204 naming the origin, or 403 saying it is not allowed."""
        allowed = self.allowed(req, who)
        if allowed is None:
            return oauth_error(
                403,
                "invalid_request",
                "this origin may not call this endpoint from a browser (only a public client's "
                "registered redirect URL origins may)",
            )
        return WebResponse(
            status=204,
            headers=(
                *self.headers(req, who),
                ("access-control-allow-methods", ", ".join(sorted(methods))),
                ("access-control-allow-headers", ALLOWED_HEADERS),
                ("access-control-max-age", MAX_AGE),
            ),
        )
