"""P1, the hot path: a logged-in request's throughput behind dingmw, as a ratio of the bare app's.

Four servers, each running four hello-world apps on free loopback ports (pinned to CPU 0),
loaded by wrk (pinned to CPU 1) with a different logged-in person's cookie on every request,
cycling through `--sessions` distinct people (10,000 by default):

* ASGI under uvicorn, plain (h11, asyncio) and uvicorn[standard] (httptools, uvloop):
  bare Starlette, behind dingmw, behind Starlette's SessionMiddleware plus a login check;
* WSGI under gunicorn, one `sync` worker and one `gthread` worker (4 threads):
  bare Flask, behind dingmw, Flask's signed-cookie session plus a login check;
* on each, "the floor": the bare app behind a middleware that only adds dingmw's scope (or
  environ) keys for a person, built once: what any middleware doing this job costs at least.

The bare app receives dingmw's cookies, so it parses the same headers. Every session is seen
once before the first round (its first verification is not the hot path); then, round after
round, one server's variants are loaded at the same moment (a wrk each), sharing the
server CPU: the kernel gives each the same share of it, so their rates compare their CPU cost
per request, and the machine's drift in speed strikes all of them alike. Goal: dingmw ≥ 0.95×
bare on every server.
Run: `python bench/p1_hot_path.py [--smoke]`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apps
import common

GOAL = 0.95
WARM_SECONDS = 2.0
WARM_PASSES = 1.2  # requests per session before the first round
SMOKE_FLOOR = 0.5  # the smoke run fails only below this: a gross regression


@dataclass(frozen=True)
class Stack:
    name: str
    kind: str  # asgi | wsgi

    def command(self, app: str, port: int) -> list[str]:
        if self.name == "uvicorn":
            return common.uvicorn_command(f"apps:{app}", port)
        if self.name == "uvicorn[standard]":
            return common.uvicorn_command(f"apps:{app}", port, fast=True)
        if self.name == "gunicorn sync":
            return common.gunicorn_command(f"apps:{app}", port, worker="sync")
        return common.gunicorn_command(f"apps:{app}", port, worker="gthread", threads=4)


STACKS = (
    Stack("uvicorn", "asgi"),
    Stack("uvicorn[standard]", "asgi"),
    Stack("gunicorn sync", "wsgi"),
    Stack("gunicorn gthread", "wsgi"),
)
APPS = ("bare", "floor", "dingmw", "sessions")
LABELS = {
    "bare": "bare app",
    "floor": "the floor: dingmw's scope keys added, nothing read",
    "dingmw": "dingmw, logged in",
    "sessions": "SessionMiddleware/Flask session + login check",
}


def run(args: Any) -> dict[str, Any]:
    smoke: bool = args.smoke
    # Many short rounds rather than a few long ones: on a machine whose speed drifts, the
    # median of eleven ratios moves less than the median of five.
    rounds = args.rounds or (5 if smoke else 11)
    seconds = args.seconds or (1 if smoke else 3)
    count = args.sessions or (1000 if smoke else 10_000)
    out: Path = args.out
    common.need_wrk()
    # The smoke run: the two commonest servers, and only what its check compares.
    stacks = [s for s in STACKS if s.name in ("uvicorn", "gunicorn gthread")] if smoke else STACKS
    app_names = ("bare", "dingmw") if smoke else APPS
    files = {
        variant: apps.write_cookies(
            out / "cookies" / f"{variant}.txt", apps.cookies(variant, count)
        )
        for variant in ("asgi_dingmw", "asgi_sessions", "wsgi_sessions")
    }
    for same in ("asgi_bare", "wsgi_bare", "wsgi_dingmw", "asgi_floor", "wsgi_floor"):
        files[same] = files["asgi_dingmw"]
    specs: dict[str, common.Spec] = {}
    for stack in stacks:
        for app in app_names:
            port = common.free_port()
            name = f"{stack.kind}_{app}"
            specs[f"{stack.name} / {app}"] = common.Spec(
                f"{stack.name} {name}", stack.command(name, port), port
            )
    variants = list(specs)
    with common.servers(list(specs.values())) as started:
        servers = dict(zip(variants, started, strict=True))

        def load(variant: str, seconds: float) -> float:
            return common.wrk(
                servers[variant].url + "/",
                seconds=seconds,
                connections=args.connections,
                script="cookies.lua",
                script_args=[str(files["_".join(kind_app(variant))])],
            ).rate

        def warm(variant: str) -> None:
            """A first pass over every cookie (a session is verified the first time it is
            seen), so the verified-session caches start warm."""
            served = 0.0
            while served < count * WARM_PASSES:
                served += load(variant, WARM_SECONDS) * WARM_SECONDS

        # One server's variants at once, round after round, then the next server's: ratios
        # only ever compare the variants of one server, measured in the same seconds, and
        # its rounds follow its warm-up at once and stay short, so each dingmw server sees
        # each session every few seconds, as a busy site does. (A session is re-checked once
        # a minute per process; rounds a minute apart would re-check it on every request.)
        rates: dict[str, list[float]] = {}
        for stack in stacks:
            mine = [v for v in variants if v.startswith(f"{stack.name} / ")]
            for variant in mine:
                warm(variant)
            rates.update(common.simultaneous(mine, rounds, lambda v: load(v, seconds)))
    return summarise(
        rates,
        stacks=stacks,
        app_names=app_names,
        smoke=smoke,
        rounds=rounds,
        seconds=seconds,
        sessions=count,
        out=out,
    )


def kind_app(variant: str) -> tuple[str, str]:
    stack_name, app = variant.split(" / ")
    return next(s.kind for s in STACKS if s.name == stack_name), app


def summarise(
    rates: dict[str, list[float]],
    *,
    stacks: Sequence[Stack],
    app_names: Sequence[str],
    smoke: bool,
    rounds: int,
    seconds: float,
    sessions: int,
    out: Path,
) -> dict[str, Any]:
    rows: list[list[object]] = []
    ratios: dict[str, dict[str, float]] = {}
    for stack in stacks:
        bare = rates[f"{stack.name} / bare"]
        ratios[stack.name] = {}
        for app in app_names:
            mine = rates[f"{stack.name} / {app}"]
            # The ratio of each round (the variants ran side by side), then the median.
            per_round = [m / b for m, b in zip(mine, bare, strict=True) if b]
            ratio = common.median(per_round)
            ratios[stack.name][app] = ratio
            rows.append([stack.name, LABELS[app], common.median(mine), ratio])
    text = common.table(["server", "variant", "req/s (median, sharing)", "× bare"], rows)
    note = (
        f"{sessions:,} distinct sessions cycling, {rounds} rounds of {seconds} s, a server's "
        f"{len(app_names)} variants loaded at the same moment and sharing its CPU (so each "
        f"rate is about 1/{len(app_names)} of what it would be alone); ratio = median over "
        f"rounds of (variant ÷ bare in the same round). "
        f"Goal: dingmw ≥ {GOAL}× bare."
    )
    data = {"rates": rates, "ratios": ratios, "sessions": sessions, "rounds": rounds}
    common.report(out, "p1_hot_path", "P1 hot path", {"Throughput": f"{note}\n\n{text}"}, data)
    chart(ratios, app_names, out)
    data["failures"] = failures(ratios) if smoke else []
    return data


def failures(ratios: dict[str, dict[str, float]]) -> list[str]:
    return [
        f"P1 {stack}: dingmw at {values['dingmw']:.2f}× bare (smoke floor {SMOKE_FLOOR}×)"
        for stack, values in ratios.items()
        if not values["dingmw"] >= SMOKE_FLOOR
    ]


def chart(ratios: dict[str, dict[str, float]], app_names: Sequence[str], out: Path) -> None:
    names = list(ratios)
    common.grouped_bars(
        out,
        "p1_hot_path",
        groups=names,
        series={LABELS[app]: [ratios[n][app] for n in names] for app in app_names},
        ylabel="throughput × bare app",
        title="P1: a logged-in request, per server",
        goal=(GOAL, f"goal {GOAL}×"),
        size=(8, 4),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parse = common.parser(__doc__, rounds=5)
    parse.add_argument("--seconds", type=int, default=None, help="per variant and round")
    parse.add_argument("--sessions", type=int, default=None, help="distinct people cycling")
    parse.add_argument("--connections", type=int, default=32)
    args = parse.parse_args(argv)
    common.configure(args)
    return common.checks_failed(run(args)["failures"])


if __name__ == "__main__":
    sys.exit(main())
