"""The fake's neutral request/response and the three response dialects.

* oapi (``oapi.dingtalk.com``): always HTTP 200, ``{"errcode": N, "errmsg": ...}``.
* api (``api.dingtalk.com``): HTTP 4xx/5xx with ``{"code", "message", "requestid"}``
  and ``x-acs-request-id`` / ``x-acs-trace-id`` headers (dingtalk-api.md §0).
* pages (``login.dingtalk.com`` and the oapi browser pages): HTML, JS, redirects.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

API_JSON = "application/json;charset=utf-8"
OAPI_JSON = "application/json;charset=UTF-8"
HTML = "text/html;charset=utf-8"
JS = "application/javascript;charset=utf-8"


@dataclass(frozen=True, slots=True, kw_only=True)
class Req:
    method: str
    scheme: str
    host: str
    path: str
    raw_query: str
    headers: Mapping[str, str]  # lower-case names
    body: bytes

    @property
    def query(self) -> dict[str, str]:
        """Standard query decoding (``+`` is a space, ``%2B`` is ``+``); first value wins."""
        out: dict[str, str] = {}
        for key, value in parse_qsl(self.raw_query, keep_blank_values=True):
            out.setdefault(key, value)
        return out

    @property
    def origin(self) -> str:
        return f"{self.scheme}://{self.host}"

    @property
    def url(self) -> str:
        return self.origin + self.path + (("?" + self.raw_query) if self.raw_query else "")

    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    def json_object(self) -> dict[str, Any] | None:
        """The body as a JSON object, or None when it is not one."""
        try:
            value = json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None
        return value if isinstance(value, dict) else None

    def form(self) -> dict[str, str]:
        out: dict[str, str] = {}
        try:
            text = self.body.decode("utf-8")
        except UnicodeDecodeError:
            return out
        for key, value in parse_qsl(text, keep_blank_values=True):
            out.setdefault(key, value)
        return out


@dataclass(slots=True, kw_only=True)
class Resp:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)


def request_id() -> str:
    return secrets.token_hex(6)


def json_bytes(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# --- oapi -----------------------------------------------------------------------------------


def oapi_json(payload: Mapping[str, Any]) -> Resp:
    return Resp(status=200, body=json_bytes(payload), headers=[("content-type", OAPI_JSON)])


def oapi_ok(**fields: Any) -> Resp:
    return oapi_json({"errcode": 0, "errmsg": "ok", **fields})


def oapi_error(errcode: int, errmsg: str, **extra: Any) -> Resp:
    return oapi_json({"errcode": errcode, "errmsg": errmsg, **extra})


def topapi_auth_error(sub_code: str, sub_msg: str) -> Resp:
    """topapi wraps auth failures as errcode 88 + string sub_code (dingtalk-api.md §0, §7).

    The ``errmsg`` wording is UNCONFIRMED; clients must key on errcode/sub_code.
    """
    return oapi_error(
        88,
        f"ding talk error[subcode={sub_code},submsg={sub_msg}]",
        sub_code=sub_code,
        sub_msg=sub_msg,
        request_id=request_id(),
    )


# --- api ------------------------------------------------------------------------------------


def api_headers(rid: str) -> list[tuple[str, str]]:
    return [
        ("content-type", API_JSON),
        ("x-acs-request-id", rid),
        ("x-acs-trace-id", uuid.uuid4().hex),
    ]


def api_json(payload: Mapping[str, Any], status: int = 200) -> Resp:
    rid = str(uuid.uuid4()).upper()
    return Resp(status=status, body=json_bytes(payload), headers=api_headers(rid))


def api_error(status: int, code: str, message: str, **extra: Any) -> Resp:
    rid = str(uuid.uuid4()).upper()
    payload = {"code": code, "message": message, "requestid": rid, **extra}
    return Resp(status=status, body=json_bytes(payload), headers=api_headers(rid))


# --- pages ----------------------------------------------------------------------------------


def html(body: str, status: int = 200) -> Resp:
    return Resp(
        status=status,
        body=body.encode("utf-8"),
        headers=[("content-type", HTML), ("cache-control", "no-store")],
    )


def javascript(source: str) -> Resp:
    """A script, readable cross-origin as a CDN serves it (so Subresource Integrity works)."""
    headers = [("content-type", JS), ("access-control-allow-origin", "*")]
    return Resp(status=200, body=source.encode("utf-8"), headers=headers)


def redirect(location: str) -> Resp:
    return Resp(status=302, headers=[("location", location), ("cache-control", "no-store")])


def page_json(payload: Mapping[str, Any], status: int = 200) -> Resp:
    return Resp(
        status=status,
        body=json_bytes(payload),
        headers=[("content-type", "application/json;charset=utf-8"), ("cache-control", "no-store")],
    )
