"""The routing charter: which requests are the middleware's, public, or protected.

Rule 1: paths under `DINGMW_PATH_PREFIX` belong to the middleware; the route
table below maps the rest of the path to a `Route` (unknown ones are 404).

Rule 2: `DINGMW_PUBLIC_PATHS` patterns match the path only (never the query).
A pattern is an exact path (`/health`) or ends in `*` (`/static/*` matches
`/static/` and everything below). A path with `.`/`..` segments or `//` is
never public, so a framework that normalises paths cannot be tricked into
serving a protected page through a public prefix.

Rule 3: everything else is protected. Without a session, a browser navigation
(GET/HEAD accepting `text/html`) is redirected to the login page; anything
else gets 401 JSON.

Rule 4: `prefers_html` alone tells a browser from an API client, for the
redirect to the login page and for error pages alike: a browser names
`text/html` (or XHTML) in `Accept`, with a quality above 0 and at least that
of JSON. `*/*` alone (curl, most HTTP libraries) is an API client.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable

from werkzeug.datastructures import MIMEAccept
from werkzeug.http import parse_accept_header

from .http import WebRequest


class Route(enum.Enum):
    LOGIN = "login"
    CALLBACK = "callback"
    LOGOUT = "logout"
    ME = "me"
    AUTH = "auth"
    HEALTHZ = "healthz"
    READYZ = "readyz"
    METRICS = "metrics"
    NOT_FOUND = "not_found"
    APP = "app"


ROUTES: dict[str, tuple[Route, frozenset[str]]] = {
    "/login": (Route.LOGIN, frozenset({"GET", "HEAD"})),
    # GET only: a HEAD (a link checker, a prefetch) must not spend the one-time state.
    "/callback": (Route.CALLBACK, frozenset({"GET"})),
    "/logout": (Route.LOGOUT, frozenset({"GET", "HEAD", "POST"})),
    "/me": (Route.ME, frozenset({"GET", "HEAD"})),
    "/auth": (Route.AUTH, frozenset({"GET", "HEAD"})),
    "/healthz": (Route.HEALTHZ, frozenset({"GET", "HEAD"})),
    "/readyz": (Route.READYZ, frozenset({"GET", "HEAD"})),
    "/metrics": (Route.METRICS, frozenset({"GET", "HEAD"})),
}

_DOT_SEGMENT = re.compile(r"(?:^|/)\.{1,2}(?:/|$)")


def own_route(path: str, prefix: str) -> tuple[Route, frozenset[str]] | None:
    """The middleware route of `path`, or None when the path is the app's."""
    if not path.startswith(prefix):
        return None
    rest = path[len(prefix) :]
    if rest and rest[0] != "/":
        return None
    return ROUTES.get(rest, (Route.NOT_FOUND, frozenset()))


def own_url(req: WebRequest, prefix: str, route: str) -> str:
    """A path-absolute URL of one of the middleware's routes (`login`, `logout`, ...)."""
    return f"{req.root_path}{prefix}/{route}"


class PublicPaths:
    """Compiled `DINGMW_PUBLIC_PATHS` patterns."""

    __slots__ = ("_exact", "_prefixes")

    def __init__(self, patterns: Iterable[str]) -> None:
        exact: set[str] = set()
        prefixes: list[str] = []
        for pattern in patterns:
            if pattern.endswith("*"):
                prefixes.append(pattern[:-1])
            else:
                exact.add(pattern)
        self._exact = frozenset(exact)
        self._prefixes = tuple(prefixes)

    def __bool__(self) -> bool:
        return bool(self._exact or self._prefixes)

    def match(self, path: str) -> bool:
        if not (path in self._exact or path.startswith(self._prefixes)):
            return False
        return "//" not in path and not _DOT_SEGMENT.search(path)


_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})


def prefers_html(accept: str) -> bool:
    """A browser rather than an API client, from its `Accept` header (rule 4)."""
    if "html" not in accept.lower():
        return False
    parsed = parse_accept_header(accept, MIMEAccept)
    html = max((q for value, q in parsed if value.lower() in _HTML_TYPES), default=0.0)
    return html > 0 and html >= parsed.quality("application/json")


def wants_html(method: str, accept: str) -> bool:
    """A browser navigation: a GET/HEAD from a browser (a POST is never redirected)."""
    return method in ("GET", "HEAD") and prefers_html(accept)
