"""In-client login: silent login inside the DingTalk client (dingtalk-api.md §6.1, §6.2).

With `DINGMW_CORP_ID` set, a login page opened inside the DingTalk client (its
User-Agent says `DingTalk`) loads the JSAPI, calls `requestAuthCode({corpId})`
and comes back to the callback with `?jsapi_code=` instead of the flow's code.
Server: `topapi/v2/user/getuserinfo` with the corp app's token → the person's
userid and unionid. No QR. Works with every flow; the QR stays as the fallback.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..config import Settings
from ..core.effects import Flow
from ..errors import UpstreamError
from ..identity import Identity
from .calls import as_str
from .enrich import CorpDirectory, corp_token_probe
from .registry import Addon

GETUSERINFO_CALL = "topapi/v2/user/getuserinfo"
IN_CLIENT_FLOW = "inclient"
CODE_PARAMETER = "jsapi_code"


def enabled(settings: Settings) -> bool:
    return bool(settings.corp_id)


def inside_dingtalk(settings: Settings, user_agent: str) -> bool:
    """Inside the DingTalk client (its User-Agent says so) with silent login configured."""
    return enabled(settings) and "dingtalk" in user_agent.lower()


def page_config(settings: Settings) -> dict[str, Any]:
    """What the login page's script needs to try the silent login first."""
    return {"in_client": {"corp_id": settings.corp_id}}


class InClientLogin:
    """A JSAPI `requestAuthCode` code → the person, with the corp app's token."""

    def __init__(self, settings: Settings, directory: CorpDirectory) -> None:
        self._s = settings
        self._directory = directory

    def code_from(self, params: Mapping[str, str]) -> str | None:
        return params.get(CODE_PARAMETER) or None

    def exchange(self, code: str) -> Flow[Identity]:
        data = yield from self._directory.lookup(GETUSERINFO_CALL, {"code": code})
        result = data.get("result")
        if not isinstance(result, dict):
            raise UpstreamError(GETUSERINFO_CALL, "the reply has no result")
        userid = as_str(result.get("userid"))
        unionid = as_str(result.get("unionid"))
        if userid is None or unionid is None:
            raise UpstreamError(GETUSERINFO_CALL, "the result has no userid or unionid")
        return Identity(
            unionid=unionid,
            userid=userid,
            name=as_str(result.get("name")),
            corp_id=self._s.corp_id,
            flow=IN_CLIENT_FLOW,
        )


ADDON = Addon(
    name="inclient",
    enabled=enabled,
    probe=corp_token_probe,
    describe=lambda s: [f"in-client login for corp {s.corp_id}"],
)
