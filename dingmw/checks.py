"""`dingmw check`: what is wrong in the environment, and (with `--live`) proof of the credentials.

The live check is a flow like any other: it yields the token requests and a
driver performs them, so it exercises the same code a login does. What each
flow and option proves is declared with it (`providers.registry`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from . import declare
from .config import Settings
from .core.effects import Flow


def describe(settings: Settings, environ: Mapping[str, str] | None = None) -> list[str]:
    """The settings as `dingmw check` prints them: each variable that is set (or differs from
    its default), then what follows from them. A secret shows only its length."""
    rows = declare.shown(settings, environ)
    width = max((len(name) for name, _ in rows), default=0)
    lines = [f"{name.ljust(width)}  {value}" for name, value in rows]
    from .providers.registry import describe as what_follows

    return lines + what_follows(settings)


def problems(environ: Mapping[str, str] | None = None) -> tuple[Settings | None, list[str]]:
    """Every problem of the environment at once: malformed or missing values, rules over
    several settings, and unknown `DINGMW_*` variables (with the closest known name)."""
    settings, found = declare.problems(Settings, environ)
    env = os.environ if environ is None else environ
    return settings, found + declare.unknown_variables(env)


def live_check(settings: Settings) -> Flow[list[str]]:
    """Run the probes of the configured flow and options; each line says what was proven."""
    from .providers.registry import live_check as probes

    return probes(settings)
