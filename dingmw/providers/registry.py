"""What each login flow is, asked by the settings, the core, `dingmw check` and the demo.

Each `DINGMW_FLOW` is one module that ends with a `LoginFlow` declaration: how to
build its provider, which settings it requires (its rules), what its organisation
and department data are worth to the allow-lists, its `dingmw check --live` probe
and how the demo wires it to the fake DingTalk. Options that work with any flow
(enrichment, in-client login) are `Addon`s. Nothing outside this package tests a
flow's name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from ..core.effects import Flow

if TYPE_CHECKING:
    from ..config import Settings
    from . import Provider

Clock = Callable[[], float]
Rule = Callable[["Settings"], "str | None"]
Probe = Callable[["Settings"], Flow[str]]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class LoginFlow:
    """One value of `DINGMW_FLOW`."""

    name: str
    make: Callable[[Settings, Clock], Provider]
    #: the call proving the credentials (`dingmw check --live`); returns what it proved
    probe: Probe
    #: settings rules of this flow (a message naming the variables, or None)
    rules: tuple[Rule, ...] = ()
    #: the flow says which organisation the person logged in with (corp allow-list)
    gives_corp: bool = False
    #: the flow gives the person's departments without enrichment (department allow-list)
    gives_departments: bool = False
    #: the official QR widget script the login page loads (`DINGMW_LOGIN_SCRIPT_URL` overrides)
    widget_script: str | None = None
    #: the path of the QR widget stand-in at the fake DingTalk, for `dingmw demo`;
    #: None: the flow has no demo of its own
    demo_script: str | None = None
    #: what `dingmw check` says about it
    describe: Callable[[Settings], list[str]] = lambda s: []
    #: the URL the site's own credentials travel to instead of DingTalk's endpoints (the
    #: hub's), for `dingmw check --deploy`; None: the flow calls DingTalk itself
    remote: Callable[[Settings], str | None] = lambda s: None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Addon:
    """An option that works with any flow (enrichment, in-client login)."""

    name: str
    enabled: Callable[[Settings], bool]
    probe: Probe | None = None
    rules: tuple[Rule, ...] = ()
    describe: Callable[[Settings], list[str]] = lambda s: []


def flows() -> dict[str, LoginFlow]:
    """Every login flow, by name, in the order the documentation lists them."""
    from . import bycode, hubclient, oauth2, sns

    return {f.name: f for f in (oauth2.FLOW, sns.FLOW, bycode.FLOW, hubclient.FLOW)}


def addons() -> tuple[Addon, ...]:
    from . import enrich, inclient

    return (enrich.ADDON, inclient.ADDON)


def names() -> tuple[str, ...]:
    return tuple(flows())


def login_flow(name: str) -> LoginFlow:
    return flows()[name]


def enabled_addons(settings: Settings) -> Iterator[Addon]:
    return (addon for addon in addons() if addon.enabled(settings))


def rules(settings: Settings) -> list[str]:
    """What the settings of the flow and of the enabled add-ons break."""
    found = []
    for rule in (*login_flow(settings.flow).rules, *_addon_rules(settings)):
        problem = rule(settings)
        if problem:
            found.append(problem)
    return found


def _addon_rules(settings: Settings) -> Iterator[Rule]:
    for addon in enabled_addons(settings):
        yield from addon.rules


def probes(settings: Settings) -> list[Probe]:
    """The `dingmw check --live` probes of the flow and of the enabled add-ons, each once."""
    found: list[Probe] = [login_flow(settings.flow).probe]
    for addon in enabled_addons(settings):
        if addon.probe is not None and addon.probe not in found:
            found.append(addon.probe)
    return found


def live_check(settings: Settings) -> Flow[list[str]]:
    """Run the probes in turn; each returns a line saying what it proved."""
    results = []
    for probe in probes(settings):
        results.append((yield from probe(settings)))
    return results


def describe(settings: Settings) -> list[str]:
    lines = login_flow(settings.flow).describe(settings)
    for addon in enabled_addons(settings):
        lines.extend(addon.describe(settings))
    return lines


def demo_flows() -> tuple[str, ...]:
    return tuple(name for name, f in flows().items() if f.demo_script is not None)
