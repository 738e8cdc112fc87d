"""Where a browser may be sent, and the public URL of this site.

`safe_next()` accepts same-site paths only. It rejects anything a browser
could read as another host: `//host`, `/\\host`, `https:…`, control
characters and backslashes, also when they hide behind percent-encoding.

`external_base()` is the public base URL used for `redirect_uri`:
`DINGMW_BASE_URL` when set, else the request's scheme, host and root path.
`X-Forwarded-Proto/Host/Prefix` count only with `DINGMW_TRUST_PROXY=1`.
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult, unquote, urlsplit

from ..config import Settings
from ..errors import BadRequestError
from .http import WebRequest, iri_to_uri

MAX_NEXT_LENGTH = 2048
_HOST_RE = re.compile(r"^(?:[A-Za-z0-9\-._~]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$")
_PREFIX_RE = re.compile(r"^(?:/[A-Za-z0-9\-._~%!$&'()*+,;=:@]+)*$")


def _split(url: str) -> SplitResult | None:
    """`urlsplit(url)`, or None for what it cannot split (`http://[x`: a bad IPv6 host)."""
    try:
        return urlsplit(url)
    except ValueError:
        return None


def _looks_offsite(path: str) -> bool:
    # Browsers drop tabs and newlines anywhere in a URL ("/\t/host" is "//host"), so
    # control characters are refused; an inner space is harmless and kept (encoded).
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in path) or "\\" in path:
        return True
    if not path.startswith("/") or path.startswith("//"):
        return True
    parts = _split(path)
    return parts is None or bool(parts.scheme or parts.netloc)


def safe_next(raw: str | None) -> str | None:
    """`raw` when it is a same-site path (with optional query), else None.

    Non-ASCII characters come back percent-encoded, ready for a `Location` header.
    """
    if not raw or len(raw) > MAX_NEXT_LENGTH:
        return None
    if "#" in raw:
        raw = raw.split("#", 1)[0]
    decoded = raw
    for _ in range(3):
        if _looks_offsite(decoded):
            return None
        undone = unquote(decoded)
        if undone == decoded:
            break
        decoded = undone
    else:
        return None
    return iri_to_uri(raw)


def same_origin_path(raw: str | None, req: WebRequest, settings: Settings) -> str | None:
    """An absolute `next` on this site's own origin as its path and query; else `raw` as is.

    Starlette's `@requires(..., redirect=...)` sends the page as a full URL
    (`?next=http://host/page`); one on another origin stays absolute, so
    `safe_next` refuses it.
    """
    if not raw or not raw.lower().startswith(("http://", "https://")):
        return raw
    parts = _split(raw)
    own = urlsplit(external_base(req, settings))
    if parts is None or (parts.scheme.lower(), parts.netloc.lower()) != (
        own.scheme,
        own.netloc.lower(),
    ):
        return raw
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _first(value: str) -> str:
    return value.split(",", 1)[0].strip()


def valid_prefix(prefix: str) -> bool:
    """A mount path: `/a/b` segments of URL characters, no `.`/`..` segment, no `//`,
    and no percent-encoded `/`, `\\` or `.` (which a server may decode later)."""
    if not _PREFIX_RE.match(prefix):
        return False
    lowered = prefix.lower()
    if any(code in lowered for code in ("%2f", "%5c", "%2e", "%00")):
        return False
    return all(segment not in (".", "..") for segment in prefix.split("/")[1:])


def forwarded_prefix(req: WebRequest) -> str:
    """`X-Forwarded-Prefix` (trusted proxies only): where the proxy mounts this app."""
    return prefix_of(req.headers.get("x-forwarded-prefix", ""))


def prefix_of(header: str) -> str:
    """The mount path an `X-Forwarded-Prefix` value names; `BadRequestError` when invalid."""
    raw = _first(header)
    prefix = raw.rstrip("/")
    if prefix and (not valid_prefix(prefix) or raw.endswith("//")):
        raise BadRequestError("bad_forwarded", "X-Forwarded-Prefix is not a valid path")
    return prefix


def external_base(req: WebRequest, settings: Settings) -> str:
    """The public base URL (scheme://host/root_path, no trailing slash)."""
    if settings.base_url:
        return settings.base_url
    scheme, host, prefix = req.scheme, req.host, req.root_path
    if settings.trust_proxy:
        headers = req.headers
        scheme = _first(headers.get("x-forwarded-proto", "")) or scheme
        host = _first(headers.get("x-forwarded-host", "")) or host
        if "x-forwarded-prefix" in headers:
            prefix = forwarded_prefix(req)
    scheme = scheme.lower()
    if scheme not in ("http", "https"):
        raise BadRequestError("bad_forwarded", "X-Forwarded-Proto must be http or https")
    if not host or not _HOST_RE.match(host):
        raise BadRequestError("bad_host", "the Host header is not a valid host name")
    if prefix and not valid_prefix(prefix):
        raise BadRequestError("bad_forwarded", "X-Forwarded-Prefix is not a valid path")
    return f"{scheme}://{host}{prefix}"


def origin_of(url: str) -> str | None:
    parts = _split(url)
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def same_origin(req: WebRequest, settings: Settings, *, navigation: bool) -> bool:
    """Whether the browser says the request comes from this site itself.

    `Sec-Fetch-Site` decides when sent (`same-origin`; for a top-level
    navigation also `none`: a bookmark or a typed address). Without it, the
    `Origin`, else the `Referer`, must be this site's origin. A request that
    says nothing is not same-origin.
    """
    site = req.headers.get("sec-fetch-site")
    if site is not None:
        return site == "same-origin" or (navigation and site == "none")
    own = origin_of(external_base(req, settings))
    origin = req.headers.get("origin")
    if origin is not None:
        return origin.lower() == own
    referer = req.headers.get("referer")
    return referer is not None and origin_of(referer) == own


def is_https(req: WebRequest, settings: Settings) -> bool:
    """Whether the browser reached us over https (for `DINGMW_COOKIE_SECURE=auto`)."""
    if settings.cookie_secure != "auto":
        return settings.cookie_secure == "true"
    if settings.base_url:
        return settings.base_url.startswith("https://")
    if settings.trust_proxy:
        forwarded = _first(req.headers.get("x-forwarded-proto", ""))
        if forwarded:
            return forwarded.lower() == "https"
    return req.scheme == "https"
