"""The enterprise side: the corp app token and the user lookups (dingtalk-api.md §3, §6.2).

`DINGMW_ENRICH=detail` fills in the corporate identity after any flow:
`gettoken` (the corp app's token, cached per app key with single flight)
→ `topapi/user/getbyunionid` (unionid → userid; 60121 means "not a member")
→ `topapi/v2/user/get` (name, email, mobile, title, job number, departments).

The same corp token serves the silent in-client login (`DINGMW_CORP_ID`,
`providers/inclient.py`).

An invalid or expired token (40001/40014/42001, or 88 with such a
`sub_code`) is refreshed once and the call retried once (`calls.with_app_token`).

The corp token does not depend on the person, so `after` fetches it while the
login flow's own calls run (`effects.both`); the lookups themselves form a
chain DingTalk does not let overlap (getbyunionid needs the unionid the flow
returns, user/get the userid getbyunionid returns). A login with enrichment
then takes the flow's chain plus two calls, cold token or warm.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from ..config import Settings
from ..core.effects import Flow, both, memo
from ..errors import ForbiddenError, UpstreamError
from ..identity import Identity
from .calls import DingTalkError, as_int, as_str, fetch_oapi_token, post_with_app_token
from .registry import Addon

GETTOKEN_CALL = "gettoken"
BY_UNIONID_CALL = "topapi/user/getbyunionid"
USER_GET_CALL = "topapi/v2/user/get"
NOT_MEMBER = 60121
EXTERNAL_CONTACT = 1  # getbyunionid's contact_type: 0 an employee, 1 an external contact

log = logging.getLogger("dingmw")


def dept_ids(value: object) -> tuple[int, ...]:
    """`dept_id_list`, leniently: numbers or numeric strings; anything else is dropped."""
    if not isinstance(value, list):
        return ()
    ids = (as_int(item) for item in value)
    return tuple(i for i in ids if i is not None)


class CorpDirectory:
    """Lookups in the organisation's directory with the corp app's token."""

    def __init__(self, settings: Settings, clock: Callable[[], float]) -> None:
        self._s = settings
        self._key, self._secret = settings.corp_credentials
        # Keyed by app key: two corp apps never share a token.
        self._token_key = f"apptoken:corp:{self._key}"

    def _fetch_token(self) -> Flow[tuple[str, float]]:
        params = {"appkey": self._key, "appsecret": self._secret}
        return fetch_oapi_token(self._s, GETTOKEN_CALL, "/gettoken", params)

    def _topapi(self, call: str, body: dict[str, Any]) -> Flow[dict[str, Any]]:
        return post_with_app_token(
            self._s, call, f"/{call}", body, cache_key=self._token_key, fetch=self._fetch_token
        )

    def _result(self, call: str, data: dict[str, Any]) -> dict[str, Any]:
        result = data.get("result")
        if not isinstance(result, dict):
            raise UpstreamError(call, "the reply has no result")
        return result

    def app_token(self) -> Flow[str]:
        """The corp app token: from the store, else fetched once (single flight)."""
        return memo(self._token_key, self._fetch_token)

    def after(self, exchange: Flow[Identity]) -> Flow[Identity]:
        """`exchange`, then `enrich`, with the corp token fetched meanwhile."""
        identity, _ = yield from both(exchange, self.app_token())
        return (yield from self.enrich(identity))

    def enrich(self, identity: Identity) -> Flow[Identity]:
        """Add the corporate fields; a non-member keeps only what the login flow gave."""
        userid = identity.userid
        if userid is None:
            try:
                data = yield from self._topapi(BY_UNIONID_CALL, {"unionid": identity.unionid})
            except DingTalkError as exc:
                if as_int(exc.code) != NOT_MEMBER:
                    raise
                if self._s.needs_corp_membership:
                    raise ForbiddenError(
                        "not_member", who=identity.display_name, unionid=identity.unionid
                    ) from None
                return identity
            result = self._result(BY_UNIONID_CALL, data)
            if as_int(result.get("contact_type")) == EXTERNAL_CONTACT:
                # One of the organisation's external contacts, not a member (§3.3): no
                # employee detail, and never the organisation's corp_id.
                log.info("dingmw: unionid=%s is an external contact", identity.unionid)
                if self._s.needs_corp_membership:
                    raise ForbiddenError(
                        "not_member", who=identity.display_name, unionid=identity.unionid
                    )
                return identity
            userid = as_str(result.get("userid"))
            if userid is None:
                raise UpstreamError(BY_UNIONID_CALL, "the result has no userid")
        data = yield from self._topapi(USER_GET_CALL, {"userid": userid, "language": "zh_CN"})
        detail = self._result(USER_GET_CALL, data)
        ext = detail.get("union_emp_ext") or detail.get("unionEmpExt")
        ext_corp = as_str(ext.get("corpId")) if isinstance(ext, dict) else None
        return dataclasses.replace(
            identity,
            userid=userid,
            name=as_str(detail.get("name")) or identity.name,
            # The organisation email when the org has one, else the one on file.
            email=as_str(detail.get("org_email")) or as_str(detail.get("email")) or identity.email,
            mobile=as_str(detail.get("mobile")) or identity.mobile,
            title=as_str(detail.get("title")) or identity.title,
            job_number=as_str(detail.get("job_number")) or identity.job_number,
            dept_ids=dept_ids(detail.get("dept_id_list")) or identity.dept_ids,
            avatar_url=as_str(detail.get("avatar")) or identity.avatar_url,
            corp_id=self._s.corp_id or ext_corp or identity.corp_id,
        )

    def lookup(self, call: str, body: dict[str, Any]) -> Flow[dict[str, Any]]:
        """`POST {oapi}/{call}` with the corp app's cached token (in-client login uses it)."""
        return self._topapi(call, body)


def corp_token_probe(settings: Settings) -> Flow[str]:
    """`dingmw check --live`: the corp app's key and secret get a token."""
    key, secret = settings.corp_credentials
    params = {"appkey": key, "appsecret": secret}
    yield from fetch_oapi_token(settings, GETTOKEN_CALL, "/gettoken", params)
    return f"{GETTOKEN_CALL}: credentials accepted"


ADDON = Addon(
    name="enrich",
    enabled=lambda s: s.enrich == "detail",
    probe=corp_token_probe,
    describe=lambda s: [f"enrichment with corp app {s.corp_credentials[0]}"],
)
