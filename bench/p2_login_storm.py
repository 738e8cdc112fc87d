"""P2, the login storm: N people finish logging in at the same moment, with DingTalk slow.

The fake DingTalk runs in its own process and answers every server-to-server call after
`--delay` seconds (50 ms by default). The app (a hello world behind dingmw, memory store)
runs under uvicorn (ASGI) or one gunicorn gthread worker (WSGI), pinned to CPU 0; this
process is the browsers, pinned to CPU 1 beside the fake. For each N, every person first
opens the login page and "scans" in the fake (not timed), then all N callbacks are sent at
once and timed until their answers arrive: the real HTTP flow, state cookie and all.

Variants: oauth2, and oauth2 with enrichment (`DINGMW_ENRICH=detail`), each under ASGI and
WSGI. The floor is the longest chain of dependent calls times the delay: oauth2 is
userAccessToken → users/me (2); with enrichment, → getbyunionid → user/get (4), the corp
app token being fetched beside the first two. Every storm starts with an empty store, so
the app token is fetched during it: once, however many people wait for it.

Two more variants measure the storm without dingmw's callback (`apps:asgi_harness`): the same
ASGI server and login pages, and a callback that answers as a login does after only waiting
out the oauth2 floor ("waits": what the browsers and uvicorn cost on their own), or after
only making oauth2's two DingTalk calls through dingmw's pooled clients ("calls": adds httpx
and the fake, which shares CPU 1 with the browsers). "asgi oauth2" less "calls" is the cost
of dingmw's own login logic.

Reported per variant and N: callback p50 and p99 against the floor, failures, app-token
fetches (goal 1), the app server's own CPU time per login (its CPU seconds over the storm,
login pages included, divided by N; the fake and the browsers run in other processes) and
logins per second. Goals: p50 ≤ floor + 20 ms at N = 50, no failure at N = 200, ≤ 3 ms of
server CPU per login. Run: `python bench/p2_login_storm.py [--smoke]`.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import common
import httpx

from dingmw.testing import DEFAULT_APP_KEY, DEFAULT_APP_SECRET, ZHANGSAN

HTML = {"accept": "text/html,application/xhtml+xml"}
CONFIG_RE = re.compile(r'<script id="dingmw-config" type="application/json">(.*?)</script>', re.S)
COOKIE_NAME = "dingmw_session"
SECRET_KEY = "bench-login-storm-signing-key-0123456789abcdef"
SMOKE_N = 20
# The smoke run's delay: long enough that the floor, not a busy machine's CPU, sets p50, so
# "3× the floor" catches logins made one after another (N = 20 would be ~10×), not noise.
SMOKE_DELAY = 0.2
SMOKE_FLOOR_TIMES = 3.0  # the smoke run fails when p50 exceeds 3× the floor
CLIENT_TIMEOUT = 60.0


@dataclass(frozen=True)
class Variant:
    adapter: str  # asgi | wsgi
    enrich: bool
    # The storm without dingmw's callback: "wait" (it only waits out the floor) or "calls" (it
    # only makes the two DingTalk calls, through dingmw's pooled clients).
    harness: str = ""

    @property
    def name(self) -> str:
        if self.harness:
            return f"harness: callback only {'waits' if self.harness == 'wait' else 'calls'}"
        return f"{self.adapter} {'oauth2+enrich' if self.enrich else 'oauth2'}"

    @property
    def chain(self) -> int:
        """DingTalk calls in the longest dependent chain."""
        return 4 if self.enrich else 2


VARIANTS = (
    *(Variant(a, e) for e in (False, True) for a in ("asgi", "wsgi")),
    Variant("asgi", enrich=False, harness="wait"),
    Variant("asgi", enrich=False, harness="calls"),
)


@dataclass(frozen=True)
class Storm:
    latencies: list[float]  # seconds, of the callbacks that succeeded
    failures: int
    token_fetches: int
    cpu_seconds: float
    wall_seconds: float


def app_env(fake_url: str, variant: Variant, delay: float) -> dict[str, str]:
    env = {
        "DINGMW_FLOW": "oauth2",
        "DINGMW_APP_KEY": DEFAULT_APP_KEY,
        "DINGMW_APP_SECRET": DEFAULT_APP_SECRET,
        "DINGMW_SECRET_KEY": SECRET_KEY,
        "DINGMW_OAPI_URL": fake_url,
        "DINGMW_API_URL": fake_url,
        "DINGMW_LOGIN_URL": fake_url,
    }
    if variant.enrich:
        env["DINGMW_ENRICH"] = "detail"
    if variant.harness == "wait":
        env["BENCH_FLOOR"] = str(variant.chain * delay)
    elif variant.harness == "calls":
        env["BENCH_CALLS"] = fake_url
    return common.bench_env(**env)


async def prepare(client: httpx.AsyncClient, fake_url: str) -> str:
    """Open the login page and scan in the fake: the callback URL DingTalk sends back."""
    page = await client.get("/dingtalk/login", params={"next": "/"}, headers=HTML)
    page.raise_for_status()
    match = CONFIG_RE.search(page.text)
    if match is None:
        raise RuntimeError("the login page has no #dingmw-config")
    authorize = urlsplit(json.loads(match.group(1))["authorize_url"])
    confirm = await client.post(
        f"{fake_url}/oauth2/fake-confirm", data={"q": authorize.query, "unionid": ZHANGSAN.unionid}
    )
    if confirm.status_code != 302:
        raise RuntimeError(f"the fake refused the scan: HTTP {confirm.status_code}")
    return confirm.headers["location"]


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]


async def connect(browser: httpx.AsyncClient, callback: str) -> Connection:
    """A connection to the app for the callback, and its request as bytes (with the browser's
    cookies, the state cookie among them): opened before the storm, so nothing is timed yet.

    The callbacks are written as bytes rather than sent with httpx, the browsers' client: it
    costs some 0.6 ms of CPU per request here, so fifty sent at once through it would time
    mostly the load generator (CPU 1, shared with the fake), the last callback starting 30 ms
    after the first.
    """
    url = browser.base_url.join(callback)
    cookie = "; ".join(f"{c.name}={c.value}" for c in browser.cookies.jar)
    request = (
        f"GET {url.raw_path.decode('ascii')} HTTP/1.1\r\nHost: {url.netloc.decode('ascii')}\r\n"
        f"Accept: {HTML['accept']}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
    ).encode("latin-1")
    reader, writer = await asyncio.open_connection(url.host, url.port)
    return reader, writer, request


async def finish(connection: Connection) -> float | None:
    """The timed part: the callback, until its answer's head is in. None when the login failed."""
    reader, writer, request = connection
    try:
        started = time.perf_counter()
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        took = time.perf_counter() - started
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        return None
    finally:
        writer.close()
    status, *fields = head.decode("latin-1").split("\r\n")
    logged_in = any(
        name.strip().lower() == "set-cookie" and value.strip().startswith(f"{COOKIE_NAME}=")
        for name, _, value in (field.partition(":") for field in fields)
    )
    return took if status.split(" ")[1:2] == ["302"] and logged_in else None


async def calls(fake_url: str) -> dict[str, int]:
    async with httpx.AsyncClient() as client:
        data: dict[str, int] = (await client.get(f"{fake_url}/_bench/calls")).json()
        return data


# Each browser has its own connections, as browsers do (and one pool shared by hundreds of
# connections would cost the load generator more than the server: httpcore walks its pool).
BROWSER_LIMITS = httpx.Limits(max_connections=4, max_keepalive_connections=4)
# Built once: a new client would otherwise build an SSL context (~20 ms) per browser.
BROWSER_SSL = httpx.create_ssl_context()


async def storm(server: common.Server, fake_url: str, count: int) -> Storm:
    browsers = [
        httpx.AsyncClient(
            base_url=server.url,
            timeout=CLIENT_TIMEOUT,
            follow_redirects=False,
            limits=BROWSER_LIMITS,
            verify=BROWSER_SSL,
        )
        for _ in range(count)
    ]
    try:
        async with httpx.AsyncClient(base_url=server.url) as admin:
            (await admin.post("/_bench/reset")).raise_for_status()  # no app token, no state
        before = await calls(fake_url)
        cpu = server.cpu_seconds()
        prepared = await asyncio.gather(
            *(prepare(b, fake_url) for b in browsers), return_exceptions=True
        )
        connections = await asyncio.gather(
            *(
                connect(b, url)
                for b, url in zip(browsers, prepared, strict=True)
                if isinstance(url, str)
            )
        )
        started = time.perf_counter()
        results = await asyncio.gather(*(finish(c) for c in connections))
        wall = time.perf_counter() - started
        cpu = server.cpu_seconds() - cpu
        after = await calls(fake_url)
    finally:
        await asyncio.gather(*(b.aclose() for b in browsers))
    latencies = [r for r in results if r is not None]
    return Storm(
        latencies=latencies,
        failures=count - len(latencies),
        token_fetches=after.get("/gettoken", 0) - before.get("/gettoken", 0),
        cpu_seconds=cpu,
        wall_seconds=wall,
    )


def run(args: Any) -> dict[str, Any]:
    smoke: bool = args.smoke
    rounds = args.rounds or (2 if smoke else 3)
    sizes: list[int] = args.n or ([SMOKE_N] if smoke else [1, 50, 200])
    delay: float = args.delay if args.delay is not None else (SMOKE_DELAY if smoke else 0.05)
    out: Path = args.out
    common.pin_self(common.LOAD_CPU)
    fake_port = common.free_port()
    fake_spec = common.Spec(
        "fake DingTalk",
        common.uvicorn_command("fake_dingtalk:app", fake_port, fast=common.has_fast_stack()),
        fake_port,
        env=common.bench_env(BENCH_DELAY=str(delay)),
        cpu=common.LOAD_CPU,
    )
    fake_url = f"http://{common.HOST}:{fake_port}"
    specs = [fake_spec]
    for variant in VARIANTS:
        port = common.free_port()
        if variant.adapter == "asgi":
            app = "apps:asgi_harness" if variant.harness else "apps:asgi_login"
            command = common.uvicorn_command(app, port)
        else:
            command = common.gunicorn_command(
                "apps:wsgi_login", port, worker="gthread", threads=args.wsgi_threads
            )
        specs.append(
            common.Spec(variant.name, command, port, env=app_env(fake_url, variant, delay))
        )
    results: dict[int, dict[str, list[Storm]]] = {}
    with common.servers(specs) as started:
        apps = {v.name: s for v, s in zip(VARIANTS, started[1:], strict=True)}
        for server in apps.values():  # warm up: imports, templates, the pooled client
            asyncio.run(storm(server, fake_url, 1))
        for count in sizes:

            def measure(name: str, n: int = count) -> Storm:
                return asyncio.run(storm(apps[name], fake_url, n))

            results[count] = common.interleaved([v.name for v in VARIANTS], rounds, measure)
    return summarise(
        results, delay=delay, rounds=rounds, smoke=smoke, out=out, threads=args.wsgi_threads
    )


def summarise(
    results: dict[int, dict[str, list[Storm]]],
    *,
    delay: float,
    rounds: int,
    smoke: bool,
    out: Path,
    threads: int,
) -> dict[str, Any]:
    rows: list[list[object]] = []
    data: dict[str, Any] = {"delay": delay, "rounds": rounds, "wsgi_threads": threads, "rows": []}
    for count, by_variant in results.items():
        for variant in VARIANTS:
            storms = by_variant[variant.name]
            floor = variant.chain * delay
            p50 = common.median([common.percentile(s.latencies, 0.5) for s in storms])
            p99 = common.median([common.percentile(s.latencies, 0.99) for s in storms])
            row = {
                "variant": variant.name,
                "n": count,
                "floor_ms": floor * 1000,
                "p50_ms": p50 * 1000,
                "p99_ms": p99 * 1000,
                "p50_over_floor_ms": (p50 - floor) * 1000,
                "p50_x_floor": p50 / floor if floor else float("nan"),
                "failures": sum(s.failures for s in storms),
                "token_fetches": max(s.token_fetches for s in storms),
                "cpu_ms_per_login": common.median([1000 * s.cpu_seconds / count for s in storms]),
                "logins_per_s": common.median([count / s.wall_seconds for s in storms]),
            }
            data["rows"].append(row)
            rows.append(
                [
                    variant.name,
                    count,
                    row["floor_ms"],
                    row["p50_ms"],
                    row["p99_ms"],
                    row["p50_over_floor_ms"],
                    row["failures"],
                    row["token_fetches"] if variant.enrich else "—",
                    row["cpu_ms_per_login"],
                    row["logins_per_s"],
                ]
            )
    headers = [
        "variant",
        "N",
        "floor ms",
        "p50 ms",
        "p99 ms",
        "p50 − floor ms",
        "failures",
        "app-token fetches",
        "server CPU ms/login",
        "logins/s",
    ]
    note = (
        f"{delay * 1000:.0f} ms per DingTalk call, medians of {rounds} interleaved rounds "
        f"(failures: the sum; app-token fetches: the most in one storm). WSGI: one gunicorn "
        f"gthread worker with {threads} threads. Goals: p50 ≤ floor + 20 ms at N = 50, "
        "0 failures at N = 200, ≤ 3 ms server CPU per login, 1 app-token fetch."
    )
    common.report(
        out,
        "p2_login_storm",
        "P2 login storm",
        {"Callbacks": f"{note}\n\n{common.table(headers, rows)}"},
        data,
    )
    chart(data["rows"], delay, out)
    data["failures"] = failures(data["rows"]) if smoke else []
    return data


def failures(rows: Sequence[dict[str, Any]]) -> list[str]:
    found: list[str] = []
    for row in rows:
        where = f"P2 {row['variant']} N={row['n']}"
        if not row["p50_x_floor"] <= SMOKE_FLOOR_TIMES:
            found.append(
                f"{where}: p50 {row['p50_x_floor']:.1f}× the floor (limit {SMOKE_FLOOR_TIMES}×)"
            )
        if row["failures"]:
            found.append(f"{where}: {row['failures']} logins failed")
        if row["variant"].endswith("enrich") and row["token_fetches"] > 1:
            found.append(f"{where}: {row['token_fetches']} app-token fetches in one storm (goal 1)")
    return found


def chart(rows: Sequence[dict[str, Any]], delay: float, out: Path) -> None:
    plt = common.pyplot()
    if plt is None:
        return
    figure, axes = plt.subplots(figsize=(8, 4.5))
    for variant in VARIANTS:
        mine = [r for r in rows if r["variant"] == variant.name]
        ns = [r["n"] for r in mine]
        (line,) = axes.plot(
            ns, [r["p50_ms"] for r in mine], marker="o", label=f"{variant.name} p50"
        )
        axes.plot(
            ns,
            [r["p99_ms"] for r in mine],
            marker="x",
            linestyle=":",
            color=line.get_color(),
            label=f"{variant.name} p99",
        )
    for chain in sorted({v.chain for v in VARIANTS}):
        floor = chain * delay * 1000
        axes.axhline(floor, color="grey", linestyle="--", linewidth=1)
        axes.annotate(
            f"floor: {chain} calls",
            (0, floor),
            xycoords=("axes fraction", "data"),
            textcoords="offset points",
            xytext=(4, 3),
            fontsize="small",
            color="grey",
        )
    axes.set_xlabel("concurrent logins (N)")
    axes.set_ylabel("callback latency, ms")
    axes.set_title("P2: callback latency against concurrency")
    axes.legend(fontsize="x-small", ncol=2)
    common.save_chart(plt, figure, out, "p2_login_storm")


def main(argv: Sequence[str] | None = None) -> int:
    parse = common.parser(__doc__, rounds=3)
    parse.add_argument(
        "--delay", type=float, default=None, help="seconds per DingTalk call (default 0.05)"
    )
    parse.add_argument("-n", type=int, action="append", help="concurrent logins (repeatable)")
    parse.add_argument("--wsgi-threads", type=int, default=64, help="gunicorn gthread threads")
    args = parse.parse_args(argv)
    common.configure(args)
    return common.checks_failed(run(args)["failures"])


if __name__ == "__main__":
    sys.exit(main())
