"""P4, the hub: grants and userinfo per second on one worker with Redis, beside a raw-Redis ceiling.

`dingmw hub` (one uvicorn worker, Redis store, pinned to CPU 0) is driven through its
public routes only, by wrk (pinned to CPU 1, beside Redis and the fake DingTalk):

1. one person logs in at the hub through the real flow (the fake DingTalk), so the hub
   has a session; then `GET /dingtalk/authorize` with that session mints one code per
   request (single sign-on), collected from the `Location` headers;
2. code → token grants: `POST /dingtalk/token` with `code=&state=` and the site's Basic
   credentials, each code once (the tokens are collected);
3. refresh grants: `POST /dingtalk/token` with `grant_type=refresh_token`, each once;
4. userinfo: `GET /dingtalk/userinfo` with `Authorization: Bearer`, cycling the tokens.

The ceiling for each operation: the Redis commands the hub sent for one such request
(recorded with `MONITOR` before the run), replayed by a bare `redis.asyncio` client in a
process of its own on the hub's CPU, as many at once as wrk's connections. A second reference:
the same round trips behind a bare Starlette route served as the hub is (`redis_http.py`,
loaded by wrk): what any hub on this stack could serve if an operation cost nothing but HTTP
and Redis. Each round measures the hub and both references for every operation, rotating
which goes first. Goal: ≥ 0.8× the ceiling (and ≥ 1,200 grants/s on the reference machine).
Run: `python bench/p4_hub.py [--smoke]`.
"""

from __future__ import annotations

import base64
import codecs
import json
import re
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import common
import httpx

from dingmw.testing import DEFAULT_APP_KEY, DEFAULT_APP_SECRET, ZHANGSAN

SITE = "bench-site"
SITE_SECRET = "bench-site-secret-0123456789abcdef"
REDIRECT = "http://site.bench.example/callback"
SECRET_KEY = "bench-hub-signing-key-0123456789abcdefghijkl"
HTML = {"accept": "text/html,application/xhtml+xml"}
CONFIG_RE = re.compile(r'<script id="dingmw-config" type="application/json">(.*?)</script>', re.S)
OPERATIONS = ("code grant", "refresh grant", "userinfo")
# The hub (as `dingmw hub` runs by default, and with `--no-access-log`), the raw-Redis ceiling,
# and the round trips behind a bare Starlette route.
WHO = ("hub", "quiet hub", "ceiling", "http")
HUBS = ("hub", "quiet hub")
GOAL = 0.8
# The smoke run fails when grants fall below this × the bare route doing the same round trips
# (0.4-0.6× here; a client built per request once made the hub 0.03× the raw-Redis ceiling).
# Both sides answer over HTTP, so a slower machine moves them together.
SMOKE_FLOOR = 0.2
BASIC = "Basic " + base64.b64encode(f"{SITE}:{SITE_SECRET}".encode()).decode()
# Commands one client sent less than this apart (MONITOR's timestamps) came in one write: a
# pipeline, one round trip. Separate round trips are a reply, its parse and a new request
# apart (450-800 µs here); a pipeline's commands run back to back (5-70 µs here, the most for
# a large SET, which MONITOR itself takes time to print). The table shows the grouping.
PIPELINE_GAP = 200e-6  # seconds
# Commands that manage a connection, not data: left out of the ceiling.
HOUSEKEEPING = {"CLIENT", "HELLO", "PING", "SELECT", "AUTH", "ECHO", "INFO", "COMMAND", "READONLY"}


def hub_env(redis_url: str, fake_url: str) -> dict[str, str]:
    clients = [{"client_id": SITE, "client_secret": SITE_SECRET, "redirect_urls": [REDIRECT]}]
    return common.bench_env(
        DINGMW_FLOW="oauth2",
        DINGMW_APP_KEY=DEFAULT_APP_KEY,
        DINGMW_APP_SECRET=DEFAULT_APP_SECRET,
        DINGMW_SECRET_KEY=SECRET_KEY,
        DINGMW_STORE_URL=redis_url,
        DINGMW_OAPI_URL=fake_url,
        DINGMW_API_URL=fake_url,
        DINGMW_LOGIN_URL=fake_url,
        DINGMW_HUB_CLIENTS=json.dumps(clients),
        DINGMW_HUB_CODE_TTL="3600",
    )


def authorize_url(hub_url: str) -> str:
    query = urlencode({"client_id": SITE, "redirect_url": REDIRECT, "state": "s"})
    return f"{hub_url}/dingtalk/authorize?{query}"


def log_in(hub_url: str, fake_url: str) -> httpx.Client:
    """A browser with a hub session, after one login through the real flow (the hub's own
    login page, or straight to DingTalk's authorize page, whichever the hub sends it to)."""
    browser = httpx.Client(base_url=hub_url, follow_redirects=False, timeout=30)

    def scan(authorize: str) -> httpx.Response:
        query = urlsplit(authorize).query
        confirm = f"{fake_url}/oauth2/fake-confirm"
        return browser.post(confirm, data={"q": query, "unionid": ZHANGSAN.unionid})

    response = browser.get(authorize_url(hub_url), headers=HTML)
    for _ in range(10):
        location = response.headers.get("location", "")
        if response.status_code not in (301, 302, 303, 307) or location.startswith(REDIRECT):
            break
        if location.startswith(f"{fake_url}/oauth2/auth"):
            response = scan(location)
        elif urlsplit(location).path.endswith("/dingtalk/login"):
            page = browser.get(location, headers=HTML)
            match = CONFIG_RE.search(page.text)
            if match is None:
                raise SystemExit("bench: the hub's login page has no #dingmw-config")
            response = scan(json.loads(match.group(1))["authorize_url"])
        else:
            response = browser.get(location, headers=HTML)
    if not response.headers.get("location", "").startswith(REDIRECT):
        raise SystemExit(f"bench: the hub login did not come back to the site: {response}")
    return browser


def code_from(location: str) -> tuple[str, str]:
    query = parse_qs(urlsplit(location).query)
    return query["code"][0], query["state"][0]


# MONITOR: the commands the hub sends for one operation --------------------------------


class Monitor:
    """A raw `MONITOR` connection; `commands()` returns what other clients sent since."""

    MARKER = "dingmw-bench-monitor-marker"

    def __init__(self, redis_url: str) -> None:
        parts = urlsplit(redis_url)
        self.address = (parts.hostname or common.HOST, parts.port or 6379)
        self.sock = socket.create_connection(self.address, timeout=10)
        self.sock.sendall(b"MONITOR\r\n")
        self.buffer = b""
        if self._line() != b"+OK":
            raise SystemExit("bench: Redis refused MONITOR")

    def _line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise SystemExit("bench: the MONITOR connection closed")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def commands(self) -> list[list[list[str]]]:
        """The commands since, in round trips: each a list of commands sent in one write."""
        with socket.create_connection(self.address, timeout=10) as other:
            other.sendall(f"ECHO {self.MARKER}\r\n".encode())
            other.recv(1024)
        trips: list[list[list[str]]] = []
        last: tuple[float, str] | None = None
        while True:
            line = self._line().decode("latin-1")
            if self.MARKER in line:
                self.sock.close()
                return trips
            match = re.match(r"^\+([\d.]+) \[\d+ ([^\]]*)\] (.*)$", line)
            if match is None:
                continue
            args = [
                codecs.escape_decode(raw.encode("latin-1"))[0].decode("latin-1")
                for raw in re.findall(r'"((?:[^"\\]|\\.)*)"', match.group(3))
            ]
            if not args or args[0].upper() in HOUSEKEEPING:
                continue
            at, client = float(match.group(1)), match.group(2)
            if last is not None and last[1] == client and at - last[0] < PIPELINE_GAP:
                trips[-1].append(args)
            else:
                trips.append([args])
            last = (at, client)


def record(redis_url: str, hub_url: str, browser: httpx.Client) -> dict[str, list[list[list[str]]]]:
    """The Redis round trips of one code grant, one refresh grant and one userinfo."""
    code, state = code_from(browser.get(authorize_url(hub_url)).headers["location"])
    auth = {"authorization": BASIC}
    monitor = Monitor(redis_url)
    tokens = browser.post(
        "/dingtalk/token",
        content=f"code={code}&state={state}".encode(),
        headers={**auth, "content-type": "text/plain"},
    ).json()
    grant = monitor.commands()
    monitor = Monitor(redis_url)
    refreshed = browser.post(
        "/dingtalk/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        headers=auth,
    ).json()
    refresh = monitor.commands()
    monitor = Monitor(redis_url)
    who = browser.get(
        "/dingtalk/userinfo", headers={"authorization": f"Bearer {refreshed['access_token']}"}
    )
    userinfo = monitor.commands()
    if who.status_code != 200 or not grant or not refresh or not userinfo:
        raise SystemExit("bench: could not record the hub's Redis commands")
    return {"code grant": grant, "refresh grant": refresh, "userinfo": userinfo}


# The run ----------------------------------------------------------------------------


def ok_rate(result: common.WrkResult) -> tuple[float, int]:
    """Successful answers per second (hub.lua's own count) and that count."""
    match = re.search(r"BENCH ok=(\d+) us=(\d+)", result.output)
    if match is None:
        raise SystemExit(f"bench: hub.lua printed no count:\n{result.output}")
    ok, micros = int(match.group(1)), int(match.group(2))
    return ok / (micros / 1e6), ok


def ceiling(redis_url: str, seconds: float, connections: int, commands: Path) -> float:
    output = subprocess.run(
        [
            *common.pinned(common.SERVER_CPU),
            sys.executable,
            str(common.HERE / "redis_ceiling.py"),
            *[redis_url, str(seconds), str(connections), str(commands)],
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout
    data = json.loads(output)
    return float(data["operations"]) / float(data["seconds"])


def run(args: Any) -> dict[str, Any]:
    smoke: bool = args.smoke
    rounds = args.rounds or 3
    seconds = args.seconds or (2 if smoke else 5)
    connections: int = args.connections
    out: Path = args.out
    work = out / "p4"
    work.mkdir(parents=True, exist_ok=True)
    common.need_wrk()
    with common.redis_server() as redis_url:
        fake_port, hub_port, quiet_port = (common.free_port() for _ in range(3))
        fake_url = f"http://{common.HOST}:{fake_port}"
        specs = [
            common.Spec(
                "fake DingTalk",
                common.uvicorn_command("fake_dingtalk:app", fake_port),
                fake_port,
                cpu=common.LOAD_CPU,
            ),
            *(
                common.Spec(
                    f"dingmw hub {' '.join(flags)}".strip(),
                    [
                        *[sys.executable, "-m", "dingmw", "hub", *flags],
                        *["--host", common.HOST, "--port", str(port)],
                    ],
                    port,
                    env=hub_env(redis_url, fake_url),
                    ready="/healthz",
                    log=out / "logs" / f"{name.replace(' ', '_')}.log",
                )
                for name, port, flags in (
                    ("hub", hub_port, ()),
                    ("quiet hub", quiet_port, ("--no-access-log",)),
                )
            ),
        ]
        with common.servers(specs) as (_, hub, quiet):
            # Both hubs share the Redis store and the keys: a code minted by one is redeemed
            # by either, so the person logs in once, at the first.
            hub_urls = {"hub": hub.url, "quiet hub": quiet.url}
            browser = log_in(hub.url, fake_url)
            cookie = "; ".join(f"{k}={v}" for k, v in browser.cookies.items())
            recorded = record(redis_url, hub.url, browser)
            files = {}
            for operation, commands in recorded.items():
                files[operation] = work / f"{operation.replace(' ', '_')}.json"
                files[operation].write_text(json.dumps(commands), encoding="utf-8")
            results: dict[str, list[float]] = {f"{o} {w}": [] for o in OPERATIONS for w in WHO}
            exhausted: list[str] = []
            bare_port = common.free_port()
            bare_spec = common.Spec(
                "Starlette + the round trips",
                [
                    *[sys.executable, "-m", "uvicorn", "redis_http:app"],
                    *["--app-dir", str(common.HERE), "--host", common.HOST],
                    *["--port", str(bare_port), "--log-level", "warning"],
                ],
                bare_port,
                env=common.bench_env(BENCH_REDIS=redis_url, BENCH_TRIPS=str(work)),
            )
            with common.servers([bare_spec]) as (bare,):
                for name in files.values():  # warm: imports, the client's connection
                    common.wrk(f"{bare.url}/{name.stem}", seconds=1, connections=connections)
                for index in range(rounds):

                    def hub_side(operation: str, who: str, round_index: int = index) -> float:
                        tag = f"{round_index}{who.replace(' ', '_')}"
                        codes, tokens = work / f"codes{tag}.txt", work / f"tokens{tag}.txt"
                        refreshed = work / f"refreshed{tag}.txt"
                        if operation == "code grant":
                            for path in (codes, tokens, refreshed):
                                path.unlink(missing_ok=True)
                            common.wrk(
                                authorize_url(hub.url),
                                seconds=seconds * 1.5,
                                connections=connections,
                                script="hub.lua",
                                script_args=["authorize", "-", str(codes)],
                                headers=[f"Cookie: {cookie}"],
                            )
                            mode, source, sink = "code", codes, tokens
                        elif operation == "refresh grant":
                            mode, source, sink = "refresh", tokens, refreshed
                        else:
                            mode, source, sink = "userinfo", refreshed, None
                        supply = sum(1 for _ in source.open(encoding="ascii"))
                        endpoint = "userinfo" if mode == "userinfo" else "token"
                        result = common.wrk(
                            f"{hub_urls[who]}/dingtalk/{endpoint}",
                            seconds=seconds if mode != "refresh" else max(1, seconds * 0.6),
                            connections=connections,
                            script="hub.lua",
                            script_args=[mode, str(source), str(sink) if sink else "-", BASIC],
                            allow_non_2xx=True,
                        )
                        rate, ok = ok_rate(result)
                        if mode != "userinfo" and ok >= supply:
                            exhausted.append(f"round {round_index + 1} {operation}")
                        return rate

                    for operation in OPERATIONS:
                        turn = index % len(WHO)
                        for who in WHO[turn:] + WHO[:turn]:
                            if who in HUBS:
                                value = hub_side(operation, who)
                            elif who == "ceiling":
                                value = ceiling(redis_url, seconds, connections, files[operation])
                            else:
                                value = common.wrk(
                                    f"{bare.url}/{files[operation].stem}",
                                    seconds=seconds,
                                    connections=connections,
                                ).rate
                            results[f"{operation} {who}"].append(value)
    return summarise(
        results, recorded, exhausted, rounds=rounds, seconds=seconds, smoke=smoke, out=out
    )


def summarise(
    results: dict[str, list[float]],
    recorded: dict[str, list[list[list[str]]]],
    exhausted: list[str],
    *,
    rounds: int,
    seconds: float,
    smoke: bool,
    out: Path,
) -> dict[str, Any]:
    rows: list[list[object]] = []
    ratios: dict[str, float] = {}
    http_ratios: dict[str, float] = {}
    against_http: dict[str, float] = {}
    quiet_ratios: dict[str, float] = {}
    log_cost: dict[str, float] = {}
    for operation in OPERATIONS:
        hub, top = results[f"{operation} hub"], results[f"{operation} ceiling"]
        quiet = results[f"{operation} quiet hub"]
        bare = results[f"{operation} http"]
        ratio = common.median([h / c for h, c in zip(hub, top, strict=True) if c])
        ratios[operation] = ratio
        quiet_ratios[operation] = common.median(
            [q / c for q, c in zip(quiet, top, strict=True) if c]
        )
        log_cost[operation] = common.median([h / q for h, q in zip(hub, quiet, strict=True) if q])
        http_ratios[operation] = common.median([b / c for b, c in zip(bare, top, strict=True) if c])
        against_http[operation] = common.median(
            [h / b for h, b in zip(hub, bare, strict=True) if b]
        )
        trips = recorded[operation]
        commands = " → ".join(" ".join(c[0].upper() for c in trip) for trip in trips)
        rows.append(
            [
                operation,
                common.median(hub),
                ratio,
                common.median(quiet),
                quiet_ratios[operation],
                common.median(top),
                common.median(bare),
                http_ratios[operation],
                commands,
            ]
        )
    text = common.table(
        [
            "operation",
            "hub per s",
            "× ceiling",
            "hub --no-access-log per s",
            "× ceiling",
            "raw-Redis ceiling per s",
            "Starlette + the round trips per s",
            "its × ceiling",
            "Redis round trips",
        ],
        rows,
    )
    note = (
        f"One `dingmw hub` worker (uvicorn) and Redis; {rounds} interleaved rounds of {seconds} s; "
        "ratio = median over rounds of (hub ÷ ceiling in the same round). The hub as it runs "
        "by default (uvicorn's access log on, codes masked) and with `--no-access-log`; the "
        "last rate: the same round trips behind a bare Starlette route served the same way "
        "(no access log), what a hub doing nothing else could serve. "
        f"Goal: ≥ {GOAL}× the ceiling."
    )
    if exhausted:
        note += f" Ran out of codes or tokens (a lower bound): {', '.join(exhausted)}."
    data = {
        "results": results,
        "ratios": ratios,
        "quiet_ratios": quiet_ratios,
        "hub_x_quiet_hub": log_cost,
        "http_ratios": http_ratios,
        "hub_x_http": against_http,
        "commands": recorded,
        "exhausted": exhausted,
    }
    common.report(out, "p4_hub", "P4 hub", {"Throughput": f"{note}\n\n{text}"}, data)
    chart(results, out)
    data["failures"] = failures(against_http) if smoke else []
    return data


def failures(against_http: dict[str, float]) -> list[str]:
    """Grants only, against the bare route doing the same round trips."""
    return [
        f"P4 {operation}: {ratio:.2f}× the bare route doing its round trips "
        f"(smoke floor {SMOKE_FLOOR}×)"
        for operation, ratio in against_http.items()
        if operation.endswith("grant") and not ratio >= SMOKE_FLOOR
    ]


def chart(results: dict[str, list[float]], out: Path) -> None:
    common.grouped_bars(
        out,
        "p4_hub",
        groups=OPERATIONS,
        series={
            label: [common.median(results[f"{o} {who}"]) for o in OPERATIONS]
            for who, label in (
                ("hub", "dingmw hub"),
                ("quiet hub", "dingmw hub --no-access-log"),
                ("http", "Starlette + the round trips"),
                ("ceiling", "raw-Redis ceiling"),
            )
        },
        ylabel="per second, one worker",
        title="P4: the hub beside the raw-Redis ceiling",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parse = common.parser(__doc__, rounds=3)
    parse.add_argument("--seconds", type=int, default=None, help="per operation and round")
    parse.add_argument("--connections", type=int, default=32)
    args = parse.parse_args(argv)
    common.configure(args)
    return common.checks_failed(run(args)["failures"])


if __name__ == "__main__":
    sys.exit(main())
