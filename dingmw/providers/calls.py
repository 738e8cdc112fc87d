"""Calling DingTalk: building requests and reading replies, errors included.

DingTalk has two API styles (dingtalk-api.md §0):

* `oapi` (oapi.dingtalk.com): HTTP 200 with `errcode` (0 = ok) and `errmsg`;
  topapi wraps token errors as `errcode 88` + `sub_code`. Doc examples write
  some numbers as strings, so numbers are read leniently.
* `api` (api.dingtalk.com v1.0): 2xx with a camelCase body, or 4xx/5xx with
  `{"code", "message", "requestid"}`.

Every failure becomes an `UpstreamError` that names the call, with DingTalk's
own code and message (never a secret) so the 502 page can say what failed.

Neither style is used when DingTalk bans the server's IP address for making too
many calls (dingtalk-api.md §7: over 10000 in 20 seconds, banned for 5 minutes):
the reply is `{"status": 1111, "wait": 5, "source": "x5", "punish": "deny", ...}`
or an HTML page. Both are told apart from other failures, so the 502 says the IP
was refused rather than that a field is missing.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Generator, Mapping
from typing import Any

import httpx

from .. import metrics
from ..config import Settings
from ..core.effects import CALL_EXTENSION, Effect, Flow, Reply, http, memo, store_delete
from ..errors import LoginError, UpstreamError
from ..logs import redact

# errcodes meaning "this app token is bad or expired": refresh once and retry.
TOKEN_ERRCODES = frozenset({40001, 40014, 42001})
# App tokens are cached this many seconds less than they live.
TOKEN_MARGIN = 300


# The per-IP ban reply (dingtalk-api.md §7), with no errcode or code.
IP_BAN_STATUS = 1111
IP_BANNED = (
    "DingTalk refused this server's IP address (per-IP rate limit: more than 10000 calls in "
    "20 seconds bans the IP for 5 minutes)"
)
HTML_REPLY = (
    "body is not JSON but an HTML page (DingTalk sends one when it refuses this server's IP "
    "address for too many calls, a 5-minute ban; a gateway's or proxy's error page looks the same)"
)


MAX_MESSAGE = 300


class DingTalkError(UpstreamError):
    """DingTalk answered, with an error code."""

    def __init__(self, call: str, code: str, message: str, *, sub_code: str = "") -> None:
        # DingTalk's own words reach a page and a log line: a credential it might quote back
        # (`appsecret=…` of a request it refused) is masked, and the length bounded.
        message = redact(message)[:MAX_MESSAGE]
        shown = f"{code}/{sub_code}" if sub_code else code
        super().__init__(call, f"DingTalk error {shown}: {message}".strip())
        self.code = code
        self.sub_code = sub_code
        self.message = message

    @property
    def token_invalid(self) -> bool:
        for candidate in (self.code, self.sub_code):
            number = as_int(candidate)
            if number in TOKEN_ERRCODES:
                return True
        return self.code == "88" and self.sub_code == "40000"

    @property
    def retryable(self) -> bool:
        """DingTalk says "try again" (dingtalk-api.md §7): `-1` system busy, `15` call
        timeout, `88` without a sub-code (its auth service timed out)."""
        return self.code in ("-1", "15") or (self.code == "88" and not self.sub_code)


def as_int(value: object) -> int | None:
    """DingTalk numbers, which sometimes arrive as strings."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def as_str(value: object) -> str | None:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


@functools.lru_cache(maxsize=64)
def _parsed(url: str) -> httpx.URL:
    """`url` parsed once: httpx's parser costs some 10 µs a call here, and the URLs (a base from
    the settings and a fixed path; a query goes in `params`) are few. An `httpx.URL` is
    immutable, so requests can share one."""
    return httpx.URL(url)


def build(
    call: str,
    method: str,
    url: str,
    *,
    timeout: float,
    params: Mapping[str, str] | None = None,
    json_body: Mapping[str, Any] | None = None,
    content: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> httpx.Request:
    """An outbound request tagged with the call's name (for error messages) and a timeout."""
    return httpx.Request(
        method,
        _parsed(url),
        params=params,
        json=json_body,
        content=content,
        headers={"accept": "application/json", **(headers or {})},
        extensions={
            CALL_EXTENSION: call,
            "timeout": httpx.Timeout(timeout).as_dict(),
        },
    )


def is_ip_ban(data: Mapping[str, Any]) -> bool:
    """The reply DingTalk sends to an IP address it has banned (no errcode, no code)."""
    return as_int(data.get("status")) == IP_BAN_STATUS or data.get("punish") is not None


def _is_html(response: httpx.Response) -> bool:
    if "html" in response.headers.get("content-type", "").lower():
        return True
    return response.content.lstrip()[:1] == b"<"


def _not_json(call: str, response: httpx.Response) -> UpstreamError:
    what = HTML_REPLY if _is_html(response) else "body is not JSON"
    return UpstreamError(call, f"HTTP {response.status_code}, {what}")


def _ip_banned(call: str) -> UpstreamError:
    metrics.dingtalk_refused(call, str(IP_BAN_STATUS))
    return UpstreamError(call, IP_BANNED)


def _json(call: str, response: httpx.Response) -> dict[str, Any]:
    try:
        data = json.loads(response.content)
    except ValueError:
        raise _not_json(call, response) from None
    if not isinstance(data, dict):
        raise UpstreamError(call, "the JSON body is not an object")
    return data


def _failed(call: str, response: httpx.Response) -> UpstreamError:
    """An unsuccessful HTTP status without DingTalk's error body: the IP ban's reply (JSON or
    HTML), else the status alone."""
    try:
        data = json.loads(response.content)
    except ValueError:
        if _is_html(response):
            return _not_json(call, response)
        data = None
    if isinstance(data, dict) and is_ip_ban(data):
        return _ip_banned(call)
    return UpstreamError(call, f"HTTP {response.status_code}")


def oapi(call: str, request: httpx.Request) -> Generator[Effect, Reply, dict[str, Any]]:
    """Send an oapi request; its JSON body when `errcode` is 0, else `DingTalkError`."""
    response = yield from http(request)
    if response.status_code != 200:
        raise _failed(call, response)
    data = _json(call, response)
    if "errcode" not in data and is_ip_ban(data):
        raise _ip_banned(call)
    errcode = as_int(data.get("errcode", 0))
    if errcode is None:
        raise UpstreamError(call, "errcode is not a number")
    if errcode != 0:
        metrics.dingtalk_refused(call, str(errcode))
        raise DingTalkError(
            call,
            str(errcode),
            str(data.get("errmsg") or ""),
            sub_code=str(data.get("sub_code") or ""),
        )
    return data


def api(call: str, request: httpx.Request) -> Generator[Effect, Reply, dict[str, Any]]:
    """Send an api.dingtalk.com request; its JSON body on 2xx, else `DingTalkError`."""
    response = yield from http(request)
    if response.is_success:
        body = _json(call, response)
        if is_ip_ban(body):
            raise _ip_banned(call)
        return body
    try:
        data = json.loads(response.content)
    except ValueError:
        data = None
    if isinstance(data, dict):
        # DingTalk's gateway SDK reads both spellings: `code`/`Code`, `message`/`Message`.
        code = data.get("code") or data.get("Code")
        if code:
            metrics.dingtalk_refused(call, str(code))
            message = data.get("message") or data.get("Message") or ""
            raise DingTalkError(call, str(code), str(message))
    raise _failed(call, response)


def with_app_token(
    cache_key: str,
    fetch: Callable[[], Flow[tuple[str, float]]],
    call: Callable[[str], Flow[dict[str, Any]]],
) -> Generator[Effect, Reply, dict[str, Any]]:
    """Run `call(token)` with a cached app token; refresh the token once if DingTalk calls it
    invalid, and send the call once more if DingTalk answers "try again" (`retryable`): the
    enrichment's lookups (reads: a login's one-time code was spent before them, so a passing
    hiccup of DingTalk's no longer costs the person a second scan) and the sns flow's code
    exchange (were the code spent by the first try, the second gets 40078: the same 502)."""
    token = yield from memo(cache_key, fetch)
    refreshed = retried = False
    while True:
        try:
            return (yield from call(token))
        except DingTalkError as exc:
            if exc.token_invalid and not refreshed:
                refreshed = True
                yield from store_delete(cache_key)
                token = yield from memo(cache_key, fetch)
            elif exc.retryable and not retried:
                retried = True
            else:
                raise


def post_with_app_token(
    settings: Settings,
    call: str,
    path: str,
    body: Mapping[str, Any],
    *,
    cache_key: str,
    fetch: Callable[[], Flow[tuple[str, float]]],
) -> Flow[dict[str, Any]]:
    """`POST {oapi}{path}?access_token=` with a JSON body and the cached app token."""

    def send(token: str) -> Flow[dict[str, Any]]:
        return oapi(
            call,
            build(
                call,
                "POST",
                f"{settings.oapi_url}{path}",
                timeout=settings.http_timeout,
                params={"access_token": token},
                json_body=body,
            ),
        )

    return with_app_token(cache_key, fetch, send)


def fetch_oapi_token(
    settings: Settings,
    call: str,
    path: str,
    params: Mapping[str, str],
    *,
    margin: float = TOKEN_MARGIN,
) -> Flow[tuple[str, float]]:
    """`GET {oapi}{path}?…` for an app token; returns it with how long to cache it.

    DingTalk's tokens live 7200 s (`expires_in` when the reply has it); they are cached
    `margin` seconds less, so a cached token never expires in flight.
    """
    try:
        request = build(
            call, "GET", f"{settings.oapi_url}{path}", timeout=settings.http_timeout, params=params
        )
        data = yield from oapi(call, request)
        token = as_str(data.get("access_token"))
        if token is None:
            raise UpstreamError(call, "the reply has no access_token")
    except LoginError:
        metrics.app_token_fetched(call, ok=False)
        raise
    metrics.app_token_fetched(call, ok=True)
    lifetime = as_int(data.get("expires_in")) or 7200
    return token, max(60.0, lifetime - margin)
