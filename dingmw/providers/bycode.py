"""DINGMW_FLOW=bycode: the signed legacy exchange of seed 003 (dingtalk-api.md §2).

Browser: the same ddLogin.js QR as `sns`. Server: one call,
`POST /sns/getuserinfo_bycode?accessKey=&timestamp=&signature=` with
`{"tmp_auth_code": code}`, where `signature` is
Base64(HmacSHA256(appSecret, millisecond timestamp)), URL-encoded in full so
`+`, `/` and `=` survive.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Mapping
from urllib.parse import quote

import httpx

from ..config import DDLOGIN_SCRIPT_URL, Settings
from ..core.effects import CALL_EXTENSION, Flow
from ..errors import UpstreamError
from ..identity import Identity
from . import LoginWidget
from .calls import DingTalkError, oapi
from .registry import LoginFlow
from .sns import app_token_probe, ddlogin_widget, identity_from_user_info

BYCODE_CALL = "sns/getuserinfo_bycode"


def signature(app_secret: str, timestamp: str) -> str:
    """Base64(HmacSHA256(key=appSecret, msg=timestamp)), standard alphabet with padding."""
    mac = hmac.new(app_secret.encode("utf-8"), timestamp.encode("utf-8"), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode("ascii")


def signed_query(app_key: str, app_secret: str, timestamp: str) -> str:
    """The query string, every value encoded with no safe characters (`+`→%2B, `/`→%2F, `=`→%3D)."""
    sig = signature(app_secret, timestamp)
    return (
        f"accessKey={quote(app_key, safe='')}&timestamp={quote(timestamp, safe='')}"
        f"&signature={quote(sig, safe='')}"
    )


class BycodeProvider:
    flow = "bycode"

    def __init__(self, settings: Settings, clock: Callable[[], float]) -> None:
        self._s = settings
        self._clock = clock

    def widget(self, *, state: str, redirect_uri: str) -> LoginWidget:
        return ddlogin_widget(self._s, state=state, redirect_uri=redirect_uri)

    def code_from(self, params: Mapping[str, str]) -> str | None:
        return params.get("code") or None

    def exchange(self, code: str, *, redirect_uri: str, state: str = "") -> Flow[Identity]:
        s = self._s
        timestamp = str(int(self._clock() * 1000))
        request = httpx.Request(
            "POST",
            f"{s.oapi_url}/sns/getuserinfo_bycode?"
            + signed_query(s.app_key, s.app_secret, timestamp),
            json={"tmp_auth_code": code},
            headers={"accept": "application/json"},
            extensions={
                CALL_EXTENSION: BYCODE_CALL,
                "timeout": httpx.Timeout(s.http_timeout).as_dict(),
            },
        )
        try:
            data = yield from oapi(BYCODE_CALL, request)
        except DingTalkError as exc:
            # DingTalk's code for a stale timestamp is undocumented; its message
            # ("签名时间戳超时") is what users report, so that is what is matched.
            if "时间戳" in exc.message or "timestamp" in exc.message.lower():
                raise UpstreamError(BYCODE_CALL, exc.detail, reason="clock_skew") from None
            raise
        return identity_from_user_info(BYCODE_CALL, data.get("user_info"), self.flow)


FLOW = LoginFlow(
    name="bycode",
    make=BycodeProvider,
    probe=app_token_probe,  # the same appId and appSecret as sns
    widget_script=DDLOGIN_SCRIPT_URL,
    demo_script="/dinglogin/ddLogin.js",
    describe=lambda s: [f"QR widget script: {s.widget_script_url}"],
)
