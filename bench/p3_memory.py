"""P3, memory: what anonymous visitors and many logged-in people cost a worker.

A hello world behind dingmw (memory store) under uvicorn (ASGI) and one gunicorn sync
worker (WSGI), loaded by wrk:

1. `--views` anonymous login-page views (100,000 by default): each sets a signed
   pending-login cookie and must leave nothing in the store;
2. `--sessions` distinct valid sessions (10,000 by default), each sent twice: the
   verified-session cache holds at most its bound, whatever the number of people.

Reported: the worker's RSS growth over each phase (measured inside the worker after a
garbage collection, against a warmed-up baseline), store entries, and the verified-session
cache's entries. Goals: < 5 MB of growth, 0 store entries, the cache within its bound.
Run: `python bench/p3_memory.py [--smoke]`.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import apps
import common
import httpx

from dingmw import Settings

SECRET_KEY = "bench-memory-signing-key-0123456789abcdefghij"
APP_KEY, APP_SECRET = "bench-app", "bench-secret"
GOAL_MB = 5.0
WARM_PEOPLE = 100  # the sessions phase warms up with these, cached before its baseline
SMOKE_LIMIT_MB = 16.0  # the smoke run fails only above this (a leak of KBs per request)


def app_env() -> dict[str, str]:
    return common.bench_env(
        DINGMW_APP_KEY=APP_KEY, DINGMW_APP_SECRET=APP_SECRET, DINGMW_SECRET_KEY=SECRET_KEY
    )


def stats(server: common.Server) -> dict[str, Any]:
    data: dict[str, Any] = httpx.get(f"{server.url}/_bench/stats", timeout=30).json()
    return data


def load(server: common.Server, path: str, cookies: Path | None, count: int, rate: float) -> int:
    """`count` requests to `path`: wrk runs until they are answered (then idles to its end),
    each run taking the cookies up where the previous one stopped, so that each of them is
    sent `count / len(cookies)` times."""
    sent = 0
    for _ in range(1000):
        if sent >= count:
            break
        remaining = count - sent
        # Short runs: wrk idles from the last answer to the end of its duration.
        result = common.wrk(
            server.url + path,
            seconds=min(5, math.ceil(1.2 * remaining / max(rate, 1.0))),
            connections=16,
            script="counted.lua",
            script_args=[str(cookies) if cookies else "-", str(remaining), str(sent)],
        )
        sent += result.requests
    return sent


def phase(
    server: common.Server, path: str, cookies: Path | None, count: int, warm: Path | None = None
) -> dict[str, Any]:
    """Warm up (and measure the rate, to size wrk's run), then the baseline, then `count`
    requests. The warm-up sends `warm`'s cookies (other people's), so the growth counts every
    one of `cookies`."""
    rate = common.wrk(
        server.url + path,
        seconds=1,
        connections=16,
        script="counted.lua",
        script_args=[str(warm or cookies or "-"), "1000000000"],
    ).rate
    before = stats(server)
    sent = load(server, path, cookies, count, rate)
    after = stats(server)
    return {
        "requests": sent,
        "rss_growth_mb": (after["rss"] - before["rss"]) / 2**20,
        "store_entries": after["store_entries"],
        "session_cache": after["session_cache"],
        "session_cache_mb": (after.get("session_cache_bytes") or 0) / 2**20,
    }


def run(args: Any) -> dict[str, Any]:
    smoke: bool = args.smoke
    rounds = args.rounds or 1
    views = args.views or (3_000 if smoke else 100_000)
    people = args.sessions or (1_000 if smoke else 10_000)
    out: Path = args.out
    common.need_wrk()
    settings = Settings(app_key=APP_KEY, app_secret=APP_SECRET, secret_keys=(SECRET_KEY,))
    made = apps.dingmw_cookies(people + WARM_PEOPLE, settings)
    cookies = apps.write_cookies(out / "cookies" / "p3_sessions.txt", made[:people])
    warm = apps.write_cookies(out / "cookies" / "p3_warm.txt", made[people:])

    def measure(adapter: str) -> dict[str, Any]:
        port = common.free_port()
        if adapter == "asgi":
            command = common.uvicorn_command("apps:asgi_login", port)
        else:
            command = common.gunicorn_command("apps:wsgi_login", port, worker="sync")
        with common.serve(adapter, command, port=port, env=app_env()) as server:
            return {
                "views": phase(server, "/dingtalk/login", None, views),
                "sessions": phase(server, "/", cookies, 2 * people, warm),
            }

    results = common.interleaved(["asgi", "wsgi"], rounds, measure)
    return summarise(results, views=views, people=people, rounds=rounds, smoke=smoke, out=out)


def summarise(
    results: dict[str, list[dict[str, Any]]],
    *,
    views: int,
    people: int,
    rounds: int,
    smoke: bool,
    out: Path,
) -> dict[str, Any]:
    rows: list[list[object]] = []
    summary: dict[str, dict[str, Any]] = {}
    for adapter, runs in results.items():
        for kind, label in (
            ("views", f"{views:,} login-page views"),
            ("sessions", f"{people:,} sessions ×2"),
        ):
            phases = [r[kind] for r in runs]
            growth = common.median([p["rss_growth_mb"] for p in phases])
            entries = max(p["store_entries"] for p in phases)
            cache = phases[-1]["session_cache"]
            cache_mb = phases[-1].get("session_cache_mb", 0.0)
            summary[f"{adapter} {kind}"] = {
                "rss_growth_mb": growth,
                "store_entries": entries,
                "session_cache": cache,
                "session_cache_mb": cache_mb,
            }
            requests = sum(p["requests"] for p in phases) // len(phases)
            shown = "—" if cache is None else f"{cache:,} ({cache_mb:.1f} MB weight)"
            rows.append([adapter, label, requests, growth, entries, shown])
    text = common.table(
        ["adapter", "phase", "requests", "RSS growth MB", "store entries", "session cache"],
        rows,
    )
    note = (
        f"Median of {rounds} round(s), a fresh worker each (uvicorn; one gunicorn sync worker). "
        f"Goals: the views grow RSS < {GOAL_MB} MB and leave 0 store entries; the sessions "
        "grow it by about what the verified-session cache holds, which is bounded: 32 MiB of "
        "verified sessions (least recently used dropped first) and 4 MiB of bad values. The "
        f"sessions phase warms up with {WARM_PEOPLE} other people, cached before its baseline "
        "(so counted in the cache, not in the growth)."
    )
    data = {"results": results, "summary": summary, "views": views, "sessions": people}
    common.report(out, "p3_memory", "P3 memory", {"Memory": f"{note}\n\n{text}"}, data)
    chart(summary, out)
    data["failures"] = failures(summary) if smoke else []
    return data


def failures(summary: dict[str, dict[str, Any]]) -> list[str]:
    found: list[str] = []
    for name, row in summary.items():
        if not row["rss_growth_mb"] < SMOKE_LIMIT_MB:
            found.append(
                f"P3 {name}: RSS grew {row['rss_growth_mb']:.1f} MB (limit {SMOKE_LIMIT_MB})"
            )
        if name.endswith("views") and row["store_entries"]:
            found.append(f"P3 {name}: {row['store_entries']} store entries (goal 0)")
    return found


def chart(summary: dict[str, dict[str, Any]], out: Path) -> None:
    plt = common.pyplot()
    if plt is None:
        return
    figure, axes = plt.subplots(figsize=(7, 3.5))
    names = list(summary)
    axes.barh(names, [summary[n]["rss_growth_mb"] for n in names])
    axes.axvline(GOAL_MB, color="grey", linestyle="--", linewidth=1, label=f"goal < {GOAL_MB} MB")
    axes.set_xlabel("RSS growth, MB")
    axes.set_title("P3: memory per phase")
    axes.legend(fontsize="small")
    common.save_chart(plt, figure, out, "p3_memory")


def main(argv: Sequence[str] | None = None) -> int:
    parse = common.parser(__doc__, rounds=1)
    parse.add_argument("--views", type=int, default=None, help="anonymous login-page views")
    parse.add_argument("--sessions", type=int, default=None, help="distinct valid sessions")
    args = parse.parse_args(argv)
    common.configure(args)
    return common.checks_failed(run(args)["failures"])


if __name__ == "__main__":
    sys.exit(main())
