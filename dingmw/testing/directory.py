"""Who exists in the fake DingTalk: apps (the developer console) and people (the address book).

Identifiers follow dingtalk-api.md §0: ``unionid`` is one person across the apps of one
developer organisation, ``openid`` is per app (derived here from app key + unionid),
``userid`` is per corp, corp ids start with ``ding``.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = [
    "DEFAULT_APP_KEY",
    "DEFAULT_APP_SECRET",
    "DEFAULT_CORP_ID",
    "LISI",
    "OUTSIDER",
    "ZHANGSAN",
    "FakeApp",
    "FakeUser",
    "default_apps",
    "default_users",
]

DEFAULT_APP_KEY = "dingfakeappkey0001"
DEFAULT_APP_SECRET = "fake-app-secret-0001-do-not-use-in-production"  # noqa: S105 (public fake)
DEFAULT_CORP_ID = "dingfakecorp0000000000000001"


@dataclass(frozen=True, slots=True, kw_only=True)
class FakeApp:
    """An app registered in the fake developer console.

    ``app_key`` doubles as the sns ``appid`` / ``accessKey`` and the OAuth2 ``clientId``.
    ``corp_id`` makes it an enterprise-internal app of that corp (``gettoken`` and the
    topapi lookups then see that corp's address book). ``redirect_domains``, when set,
    restricts the host of ``redirect_uri`` on the authorize pages (else "无权限访问").
    """

    app_key: str
    app_secret: str
    corp_id: str | None = None
    redirect_domains: tuple[str, ...] | None = None
    name: str = "Fake DingTalk app"

    def allows_redirect_host(self, host: str) -> bool:
        if self.redirect_domains is None:
            return True
        return host.lower() in {d.lower() for d in self.redirect_domains}


@dataclass(frozen=True, slots=True, kw_only=True)
class FakeUser:
    """A DingTalk account. ``userid_by_corp`` maps corp id -> userid (membership)."""

    unionid: str
    nick: str
    name: str | None = None
    userid_by_corp: Mapping[str, str] = field(default_factory=dict)
    email: str | None = None
    org_email: str | None = None
    mobile: str | None = None
    state_code: str = "86"
    title: str | None = None
    job_number: str | None = None
    dept_ids: tuple[int, ...] = ()
    avatar_url: str = ""
    work_place: str = ""
    remark: str = ""
    telephone: str = ""
    manager_userid: str = ""
    hired_date: int | None = None
    admin: bool = False
    boss: bool = False
    senior: bool = False
    active: bool = True
    real_authed: bool = True
    leader_dept_ids: tuple[int, ...] = ()
    sys_level: int = 0
    visitor: bool | None = None

    @property
    def display_name(self) -> str:
        return self.name or self.nick

    def openid_for(self, app_key: str) -> str:
        """Per-app openid, stable for (app_key, unionid)."""
        digest = hashlib.sha256(f"openid|{app_key}|{self.unionid}".encode()).digest()
        return "fakeopen" + base64.b32encode(digest).decode("ascii").rstrip("=")[:24]

    @property
    def ding_id(self) -> str:
        digest = hashlib.sha256(f"dingid|{self.unionid}".encode()).digest()
        return "$:LWCP_v1:$" + base64.b64encode(digest[:18]).decode("ascii")

    @property
    def masked_mobile(self) -> str | None:
        if not self.mobile:
            return None
        if len(self.mobile) < 7:
            return "****"
        return self.mobile[:3] + "****" + self.mobile[-4:]

    def userid_in(self, corp_id: str | None) -> str | None:
        if corp_id is None:
            return None
        return self.userid_by_corp.get(corp_id)

    @property
    def corp_ids(self) -> tuple[str, ...]:
        return tuple(self.userid_by_corp)


ZHANGSAN = FakeUser(
    unionid="fakeunionZhangSan0000000001iE",
    nick="张三",
    name="张三",
    userid_by_corp={DEFAULT_CORP_ID: "zhangsan"},
    email="zhangsan@example.com",
    org_email="zhangsan@corp.example.com",
    mobile="13800001234",
    title="工程师",
    job_number="10001",
    dept_ids=(1, 100),
    avatar_url="https://static-legacy.dingtalk.com/media/fake-zhangsan.png",
    work_place="杭州",
    hired_date=1598457600000,
    admin=True,
    sys_level=1,
)

LISI = FakeUser(
    unionid="fakeunionLiSi0000000000002iE",
    nick="Li Si",
    name="Li Si",
    userid_by_corp={DEFAULT_CORP_ID: "lisi"},
    email="lisi@example.com",
    mobile="13900005678",
    title="Product Manager",
    job_number="10002",
    dept_ids=(200,),
    manager_userid="zhangsan",
)

OUTSIDER = FakeUser(
    unionid="fakeunionWangWu000000000003iE",
    nick="Wang Wu",
    name="Wang Wu",
    userid_by_corp={},
    email="wangwu@example.org",
    mobile="15500003240",
)


def default_apps() -> list[FakeApp]:
    return [
        FakeApp(
            app_key=DEFAULT_APP_KEY,
            app_secret=DEFAULT_APP_SECRET,
            corp_id=DEFAULT_CORP_ID,
            name="dingmw demo app",
        )
    ]


def default_users() -> list[FakeUser]:
    return [ZHANGSAN, LISI, OUTSIDER]
