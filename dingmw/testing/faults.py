"""Fault injection: the next ``times`` requests to a path fail, slow down or time out."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from .wire import OAPI_JSON, Resp, api_error, api_headers, html, json_bytes, oapi_json, request_id

_API_CODES = {
    403: "Forbidden.AccessDenied",
    404: "InvalidAction.NotFound",
    429: "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi",
    500: "ServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}


def is_api_path(path: str) -> bool:
    return path.startswith("/v1.0/")


def ip_ban_body() -> bytes:
    """DingTalk's answer to an IP address it has banned for too many calls (dingtalk-api.md
    §7: more than 10000 calls in 20 seconds, 5 minutes), on either API style."""
    return json_bytes(
        {"status": 1111, "wait": 5, "source": "x5", "punish": "deny", "uuid": request_id() * 2}
    )


@dataclass(slots=True, kw_only=True)
class Fault:
    errcode: int | None = None
    sub_code: str | None = None
    status: int | None = None
    code: str | None = None
    message: str | None = None
    body: bytes | None = None
    delay: float = 0.0
    timeout: bool = False
    ip_ban: bool = False
    remaining: int = 1

    def response(self, path: str) -> Resp | None:
        """The canned response, or None to let the real handler answer (delay-only faults)."""
        if self.ip_ban:
            # DingTalk documents the body only: HTTP 200 unless `status` says otherwise.
            return Resp(
                status=self.status or 200,
                body=ip_ban_body(),
                headers=[("content-type", "application/json;charset=utf-8")],
            )
        if self.body is not None:
            content_type = "application/json;charset=utf-8" if is_api_path(path) else OAPI_JSON
            headers = api_headers(request_id()) if is_api_path(path) else []
            headers = [h for h in headers if h[0] != "content-type"]
            return Resp(
                status=self.status or 200,
                body=self.body,
                headers=[("content-type", content_type), *headers],
            )
        if self.errcode is not None:
            payload: dict[str, object] = {
                "errcode": self.errcode,
                "errmsg": self.message if self.message is not None else "injected error",
            }
            if self.sub_code is not None:
                payload["sub_code"] = self.sub_code
                payload["sub_msg"] = self.message if self.message is not None else "injected"
            if path.startswith("/topapi/"):
                payload["request_id"] = request_id()
            resp = oapi_json(payload)
            resp.status = self.status or 200
            return resp
        if is_api_path(path) and (self.code or self.message or self.status):
            status = self.status or 400
            return api_error(
                status,
                self.code or _API_CODES.get(status, "InjectedFault"),
                self.message if self.message is not None else "injected fault",
            )
        if self.status is not None:
            text = escape(self.message or f"HTTP {self.status}")
            return html(
                f"<html><body><h1>{self.status}</h1><p>{text}</p></body></html>", status=self.status
            )
        return None
