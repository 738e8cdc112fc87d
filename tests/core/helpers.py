"""Shared helpers for stepping the sans-I/O core by hand (httpx `tests/test_auth.py` style).

No client and no framework: build a `Core` with a fake renderer and a settable
clock, hand it `WebRequest`s, and answer the effects of an `Exchange` flow with
canned `httpx.Response`s whose bodies come from `tests/samples/dingtalk/`.

The samples follow `shared/dingtalk-api.md`:

    oauth2_user_access_token.json        §4.2 POST /v1.0/oauth2/userAccessToken
    oauth2_users_me.json                 §4.3 GET /v1.0/contact/users/me
    api_error_auth_code_not_found.json   §4.2 errors (HTTP 400, {code, message, requestid})
    api_error_invalid_authentication.json §4.3 errors
    sns_gettoken.json                    §1.3 GET /sns/gettoken
    sns_get_persistent_code.json         §1.3 POST /sns/get_persistent_code
    sns_get_sns_token.json               §1.3 POST /sns/get_sns_token
    sns_getuserinfo.json                 §1.3 GET /sns/getuserinfo
    sns_getuserinfo_bycode.json          §2   POST /sns/getuserinfo_bycode
    oapi_error_40078.json                §1.3/§2 bad or used code
    oapi_error_40014.json                §7   bad app token
    oapi_error_88_40014.json             §7/§10 topapi-wrapped bad token
    oapi_error_88_timeout.json           §7   88 with an empty sub_code (auth-service timeout)
    ip_ban.json                          §7   the per-IP ban (no errcode, no code)
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from dingmw.config import Settings
from dingmw.core.drive import SyncRunner
from dingmw.core.effects import Effect, Flow
from dingmw.core.flow import Core
from dingmw.core.http import WebRequest, WebResponse
from dingmw.core.outcome import Decision, Exchange, Forward, Respond
from dingmw.identity import Identity
from dingmw.session_cache import VerifiedSessions
from dingmw.stores.memory import MemoryStore

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "dingtalk"

APP_KEY = "dingappkey0001"
APP_SECRET = "app-secret-VERY-SECRET-0123456789"  # fixed test secret
SECRET_KEY = "session-key-SECRET-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
OLD_SECRET_KEY = "session-key-OLD-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
HOST = "app.example"
START = 1_700_000_000.0

E = TypeVar("E")


class Clock:
    """A settable clock (seconds since the epoch)."""

    def __init__(self, start: float = START) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def fake_render(template: str, lang: str, context: Mapping[str, Any]) -> str:
    """A renderer that shows its arguments as JSON, so tests can read the page's context."""
    return json.dumps(
        {"template": template, "lang": lang, "context": context}, ensure_ascii=False, default=str
    )


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "app_key": APP_KEY,
        "app_secret": APP_SECRET,
        "secret_keys": (SECRET_KEY,),
    }
    values.update(overrides)
    return Settings(**values)


def make_core(clock: Clock | None = None, **overrides: Any) -> Core:
    clock = clock or Clock()
    cache = VerifiedSessions(timer=clock)
    return Core(make_settings(**overrides), render=fake_render, clock=clock, cache=cache)


def web_request(
    path: str,
    *,
    method: str = "GET",
    query: str = "",
    headers: Mapping[str, str] | None = None,
    cookies: Mapping[str, str] | None = None,
    scheme: str = "http",
    host: str = HOST,
    root_path: str = "",
    accept: str | None = "text/html,application/xhtml+xml,*/*;q=0.8",
) -> WebRequest:
    """A request as an adapter would build it (lower-case header names)."""
    all_headers: dict[str, str] = {"host": host}
    if accept is not None:
        all_headers["accept"] = accept
    if cookies:
        all_headers["cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    all_headers.update({k.lower(): v for k, v in (headers or {}).items()})
    return WebRequest(
        method=method,
        scheme=scheme,
        host=all_headers["host"],
        root_path=root_path,
        path=path,
        query_string=query,
        headers=all_headers,
    )


# Reading responses ---------------------------------------------------------


def header(response: WebResponse, name: str) -> str | None:
    values = headers(response, name)
    assert len(values) <= 1, f"{name} appears {len(values)} times"
    return values[0] if values else None


def headers(response: WebResponse, name: str) -> list[str]:
    return [v for k, v in response.headers if k.lower() == name]


@dataclasses.dataclass(frozen=True)
class SetCookie:
    name: str
    value: str
    attrs: dict[str, str]  # lower-case attribute name -> value ("" for flags)

    @property
    def deleted(self) -> bool:
        return self.attrs.get("max-age") == "0"


def parse_set_cookie(raw: str) -> SetCookie:
    first, *rest = raw.split(";")
    name, _, value = first.partition("=")
    attrs: dict[str, str] = {}
    for part in rest:
        key, _, val = part.strip().partition("=")
        attrs[key.lower()] = val
    return SetCookie(name.strip(), value.strip(), attrs)


def set_cookies(response: WebResponse) -> dict[str, SetCookie]:
    """The response's `Set-Cookie` headers by cookie name (each name at most once)."""
    found: dict[str, SetCookie] = {}
    for raw in headers(response, "set-cookie"):
        cookie = parse_set_cookie(raw)
        assert cookie.name not in found, f"cookie {cookie.name} set twice"
        found[cookie.name] = cookie
    return found


def apply_cookies(jar: dict[str, str], response: WebResponse) -> None:
    """What a browser does with the response's `Set-Cookie` headers."""
    for cookie in set_cookies(response).values():
        if cookie.deleted:
            jar.pop(cookie.name, None)
        else:
            jar[cookie.name] = cookie.value


def page(response: WebResponse) -> dict[str, Any]:
    """The `fake_render` arguments of an HTML page."""
    data: dict[str, Any] = json.loads(response.body)
    return data


def page_context(response: WebResponse) -> dict[str, Any]:
    context: dict[str, Any] = page(response)["context"]
    return context


def body_json(response: WebResponse) -> dict[str, Any]:
    assert header(response, "content-type") == "application/json"
    data: dict[str, Any] = json.loads(response.body)
    return data


def location_query(response: WebResponse) -> tuple[str, dict[str, list[str]]]:
    location = header(response, "location")
    assert location is not None
    parts = urlsplit(location)
    return parts.path, parse_qs(parts.query, keep_blank_values=True)


def responded(decision: Decision) -> WebResponse:
    assert isinstance(decision, Respond), f"expected Respond, got {decision!r}"
    return decision.response


class NoHTTP:
    """A client for flows that must not call anyone."""

    def send(self, request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"unexpected HTTP call {request.url}")


def settled(decision: Decision, store: MemoryStore | None = None) -> WebResponse | Forward:
    """What the adapters make of a decision: an exchange's flow run against a memory store."""
    if isinstance(decision, Exchange):
        return SyncRunner(NoHTTP(), store or MemoryStore()).run(decision.flow)
    return decision.response if isinstance(decision, Respond) else decision


def settled_response(decision: Decision, store: MemoryStore | None = None) -> WebResponse:
    result = settled(decision, store)
    assert isinstance(result, WebResponse), f"expected a response, got {result!r}"
    return result


def identity_of(
    core: Core, jar: Mapping[str, str], store: MemoryStore | None = None
) -> Identity | None:
    """Who the core says a browser with cookies `jar` is, on a protected page."""
    result = settled(core.decide(web_request("/", cookies=jar)), store)
    return result.identity if isinstance(result, Forward) else None


def exchanged(decision: Decision) -> Flow[WebResponse]:
    """The flow of an exchange that ends in a response (a callback's, a logout's)."""
    assert isinstance(decision, Exchange), f"expected Exchange, got {decision!r}"
    return cast(Flow[WebResponse], decision.flow)


# Stepping flows ------------------------------------------------------------


def expect(effect: Effect, kind: type[E]) -> E:
    assert isinstance(effect, kind), f"expected {kind.__name__}, got {effect!r}"
    return effect


def finish(flow: Flow[WebResponse], reply: httpx.Response | str | bool | None) -> WebResponse:
    """Send the last reply; the flow must return its response."""
    with pytest.raises(StopIteration) as stop:
        flow.send(reply)
    result = stop.value.value
    assert isinstance(result, WebResponse)
    return result


def finish_by_throwing(flow: Flow[WebResponse], exc: BaseException) -> WebResponse:
    with pytest.raises(StopIteration) as stop:
        flow.throw(exc)
    result = stop.value.value
    assert isinstance(result, WebResponse)
    return result


def sample(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SAMPLES / f"{name}.json").read_text("utf-8"))
    return data


def reply(status: int = 200, name: str | None = None, **fields: Any) -> httpx.Response:
    """A DingTalk answer: sample `name` (with `fields` overriding) as JSON."""
    data = sample(name) if name else {}
    data.update(fields)
    return httpx.Response(
        status,
        content=json.dumps(data, ensure_ascii=False).encode("utf-8"),
        headers={"content-type": "application/json;charset=utf-8"},
    )


def json_of(request: httpx.Request) -> Any:
    return json.loads(request.content)


# A login from the browser's side -------------------------------------------


@dataclasses.dataclass
class Browser:
    """One browser's cookie jar, talking to one core."""

    core: Core
    jar: dict[str, str] = dataclasses.field(default_factory=dict)
    scheme: str = "http"
    root_path: str = ""

    def get(self, path: str, query: str = "", **kwargs: Any) -> Decision:
        decision = self.core.decide(
            web_request(
                path,
                query=query,
                cookies=self.jar,
                scheme=self.scheme,
                root_path=self.root_path,
                **kwargs,
            )
        )
        if isinstance(decision, Respond):
            apply_cookies(self.jar, decision.response)
        return decision

    def start_login(self, next_path: str = "/after") -> str:
        """Open the login page; return the `state` it put in the page (and in a cookie)."""
        response = responded(self.get(f"{self.core.prefix}/login", urlencode({"next": next_path})))
        assert response.status == 200
        state = page_context(response)["config"]["state"]
        assert isinstance(state, str)
        return state

    def callback(self, state: str | None, code: str = "the-auth-code", **extra: str) -> Decision:
        params = dict(extra)
        if state is not None:
            params["state"] = state
        if code:
            params["authCode" if self.core.settings.flow == "oauth2" else "code"] = code
        return self.get(f"{self.core.prefix}/callback", urlencode(params))

    def finish(self, response: WebResponse) -> WebResponse:
        apply_cookies(self.jar, response)
        return response

    def state_cookies(self) -> dict[str, str]:
        prefix = f"{self.core.settings.cookie_name}_state_"
        return {k: v for k, v in self.jar.items() if k.startswith(prefix)}
