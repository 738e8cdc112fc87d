"""Login flows as providers: one module per `DINGMW_FLOW`, no `if flow ==` in the core.

Each module declares its flow (`registry.LoginFlow`): the provider, its settings rules,
its `dingmw check --live` probe and its demo wiring.

A provider turns settings into what the login page needs (`LoginWidget`) and
a callback's code into an `Identity` (`exchange`, a sub-flow of effects).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from ..config import Settings
from ..core.effects import Flow
from ..identity import Identity


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class LoginWidget:
    """What the login page shows.

    `widget` is `dtframe` (oauth2), `ddlogin` (sns, bycode) or `redirect`.
    `hosted_url` is DingTalk's own login page for the same login (`DINGMW_LOGIN_PAGE=dingtalk`),
    when DingTalk has one.
    """

    widget: str
    authorize_url: str
    script_url: str | None
    login_origin: str
    hosted_url: str | None = None
    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)


class Provider(Protocol):
    flow: str

    def widget(self, *, state: str, redirect_uri: str) -> LoginWidget: ...

    def code_from(self, params: Mapping[str, str]) -> str | None: ...

    def exchange(self, code: str, *, redirect_uri: str, state: str = "") -> Flow[Identity]: ...


def make_provider(settings: Settings, clock: Callable[[], float]) -> Provider:
    from .registry import login_flow

    return login_flow(settings.flow).make(settings, clock)  # Settings allows only these flows
