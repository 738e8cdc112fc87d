"""What every benchmark shares: interleaved rounds, servers in their own processes,
readings from /proc, `wrk`, a throwaway `redis-server`, and the report (tables, JSON, PNG).

Method (the same in every benchmark):

* every figure that matters is a ratio of two variants measured in the same run;
* each round measures every variant once, and the order rotates from round to round,
  so a machine that slows down (another job, thermal throttling) hits every variant alike;
* a benchmark reports the median over its rounds, never the best round;
* servers run pinned to CPU 0 and the load (wrk, the Python client, the fake DingTalk,
  Redis) to CPU 1 when the machine has two CPUs or more.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LUA = HERE / "lua"
OUT = HERE / "out"
HOST = "127.0.0.1"
SERVER_CPU = 0
LOAD_CPU = 1
START_TIMEOUT = 30.0
# Pinning helps on a quiet machine and hurts on a busy one (a pinned process cannot move
# off a CPU that others load): `--no-pin` turns it off, and smoke runs never pin.
PIN = {"on": True}

T = TypeVar("T")


# Arguments and rounds -------------------------------------------------------------


def parser(doc: str | None, *, rounds: int) -> argparse.ArgumentParser:
    """The options every benchmark takes: --smoke, --rounds, --out."""
    first = (doc or "").strip().splitlines()[0] if doc else None
    parse = argparse.ArgumentParser(description=first)
    parse.add_argument(
        "--smoke",
        action="store_true",
        help="a short run (seconds) that checks only for gross regressions, as ratios",
    )
    parse.add_argument("--rounds", type=int, default=None, help=f"rounds (default {rounds})")
    parse.add_argument("--out", type=Path, default=OUT, help="where tables and charts go")
    parse.add_argument(
        "--no-pin", action="store_true", help="do not pin servers and load to separate CPUs"
    )
    return parse


def configure(args: argparse.Namespace) -> None:
    """Apply the options every benchmark shares (call once, after parsing)."""
    PIN["on"] = not (args.no_pin or args.smoke)


def interleaved(
    variants: Sequence[str], rounds: int, measure: Callable[[str], T]
) -> dict[str, list[T]]:
    """Measure every variant once per round, rotating the order from round to round."""
    results: dict[str, list[T]] = {v: [] for v in variants}
    count = len(variants)
    for index in range(rounds):
        shift = index % count if count else 0
        for variant in [*variants[shift:], *variants[:shift]]:
            results[variant].append(measure(variant))
    return results


def simultaneous(
    variants: Sequence[str], rounds: int, measure: Callable[[str], T]
) -> dict[str, list[T]]:
    """Measure every variant at the same moment, `rounds` times: each `measure` in a thread
    of its own (a load generator in a process of its own), started together.

    Servers pinned to one CPU then share it, and the kernel gives each the same share of it,
    so a variant's rate within a round is the inverse of its CPU cost per request, and a
    change in the machine's speed (this one drifts by a fifth) strikes all of them at once
    instead of whichever ran in a slower second."""
    results: dict[str, list[T]] = {v: [] for v in variants}
    for _ in range(rounds):
        found = _at_once(variants, measure)
        for variant in variants:
            results[variant].append(found[variant])
    return results


def _at_once(variants: Sequence[str], measure: Callable[[str], T]) -> dict[str, T]:
    found: dict[str, T] = {}
    errors: list[BaseException] = []

    def one(variant: str) -> None:
        try:
            found[variant] = measure(variant)
        except BaseException as exc:  # re-raised below, in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(v,)) for v in variants]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return found


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def percentile(values: Sequence[float], fraction: float) -> float:
    """The `fraction` quantile (nearest rank) of `values`."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


# Processes ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def pinned(cpu: int) -> list[str]:
    """A `taskset` prefix pinning a command to `cpu`, when there are CPUs to spare."""
    if PIN["on"] and shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", str(cpu)]
    return []


def pin_self(cpu: int) -> None:
    """Pin this process (the Python load generator) to `cpu` when possible."""
    if PIN["on"] and (os.cpu_count() or 1) > 1 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})


def bench_env(**extra: str) -> dict[str, str]:
    """The environment for a server: this one, with dingmw's sources importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DINGMW_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def wait_for_port(port: int, process: subprocess.Popen[Any], what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"bench: {what} exited with {process.returncode} before listening")
        try:
            with socket.create_connection((HOST, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)  # polling a port that is not open yet
    raise SystemExit(f"bench: {what} did not listen on port {port} within {START_TIMEOUT} s")


def wait_for_http(url: str, process: subprocess.Popen[Any], what: str) -> None:
    """Until `url` answers at all (gunicorn listens before its worker has loaded the app)."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"bench: {what} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5):  # noqa: S310  # loopback only
                return
        except urllib.error.HTTPError:
            return  # it answered (a 401 or a 302 is an answer)
        except OSError:
            time.sleep(0.05)  # the worker is still loading the app
    raise SystemExit(f"bench: {what} did not answer {url} within {START_TIMEOUT} s")


@dataclass
class Server:
    """A server in its own process on a free loopback port: `url`, `pid`, its CPU time."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    ready: str | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_seconds(self) -> float:
        """User + system CPU of the server and its children (gunicorn's workers)."""
        return sum(cpu_seconds(pid) for pid in [self.pid, *children(self.pid)])

    def rss_bytes(self) -> int:
        return sum(rss_bytes(pid) for pid in [self.pid, *children(self.pid)])


@dataclass(frozen=True)
class Spec:
    """A server to start: `command` must listen on `port`."""

    name: str
    command: Sequence[str]
    port: int
    env: Mapping[str, str] | None = None
    cpu: int | None = SERVER_CPU
    ready: str | None = "/"  # a path that answers once the app is loaded (None: not HTTP)
    log: Path | None = None  # where its stderr goes (default: this process's stderr)


def _start(spec: Spec) -> Server:
    prefix = pinned(spec.cpu) if spec.cpu is not None else []
    stderr = None
    if spec.log is not None:
        spec.log.parent.mkdir(parents=True, exist_ok=True)
        stderr = spec.log.open("ab")
    try:
        process = subprocess.Popen(
            [*prefix, *spec.command],
            env=dict(spec.env) if spec.env is not None else bench_env(),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            cwd=HERE,
        )
    finally:
        if stderr is not None:
            stderr.close()
    return Server(spec.name, process, spec.port, spec.ready)


def _stop(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(timeout=15)


@contextlib.contextmanager
def servers(specs: Sequence[Spec]) -> Iterator[list[Server]]:
    """Start every server at once, yield them once all listen, stop them all."""
    started: list[Server] = []
    try:
        for spec in specs:
            started.append(_start(spec))
        for server in started:
            wait_for_port(server.port, server.process, server.name)
            if server.ready is not None:
                wait_for_http(server.url + server.ready, server.process, server.name)
        yield started
    finally:
        for server in started:
            _stop(server)


@contextlib.contextmanager
def serve(
    name: str,
    command: Sequence[str],
    *,
    port: int,
    env: Mapping[str, str] | None = None,
    cpu: int | None = SERVER_CPU,
) -> Iterator[Server]:
    """One server: start `command` (listening on `port`), yield it once it listens, stop it."""
    with servers([Spec(name, command, port, env, cpu)]) as (server,):
        yield server


def uvicorn_command(app: str, port: int, *, fast: bool = False) -> list[str]:
    """uvicorn serving `module:attribute` from the bench folder: plain (h11, asyncio) or
    uvicorn[standard]'s stack (httptools, uvloop)."""
    http, loop = ("httptools", "uvloop") if fast else ("h11", "asyncio")
    return [
        *[sys.executable, "-m", "uvicorn", app, "--app-dir", str(HERE)],
        *["--host", HOST, "--port", str(port), "--http", http, "--loop", loop],
        *["--no-access-log", "--log-level", "warning", "--ws", "none"],
    ]


def has_fast_stack() -> bool:
    """Whether uvicorn[standard]'s httptools and uvloop are installed."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("httptools", "uvloop"))


def gunicorn_command(app: str, port: int, *, worker: str, threads: int = 1) -> list[str]:
    """One gunicorn worker (`sync` or `gthread`) serving `module:attribute`."""
    return [
        *[sys.executable, "-m", "gunicorn", app, "--chdir", str(HERE)],
        *["--bind", f"{HOST}:{port}", "--workers", "1", "--worker-class", worker],
        *["--threads", str(threads), "--log-level", "warning", "--backlog", "2048"],
        *_no_control_socket(),
    ]


@functools.cache
def _no_control_socket() -> list[str]:
    """gunicorn >= 25 opens a control socket at one fixed path: several at once collide."""
    from gunicorn.config import KNOWN_SETTINGS  # type: ignore[import-untyped]

    known = any(s.name == "control_socket_disable" for s in KNOWN_SETTINGS)
    return ["--no-control-socket"] if known else []


def children(pid: int) -> list[int]:
    """The direct children of `pid` (Linux /proc)."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process, from /proc/PID/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
    return int(match.group(1)) * 1024 if match else 0


# wrk ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    rate: float
    non_2xx: int
    errors: int
    p50_ms: float
    p99_ms: float
    output: str


def need_wrk() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit("bench: wrk is not installed (Debian: apt-get install wrk)")
    return found


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        return float("nan")
    value, unit = float(match.group(1)), match.group(2)
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk(
    url: str,
    *,
    seconds: float,
    connections: int = 32,
    script: str | None = None,
    script_args: Sequence[str] = (),
    headers: Sequence[str] = (),
    allow_non_2xx: bool = False,
) -> WrkResult:
    """Load `url` with wrk (one thread, pinned to the load CPU) for `seconds`."""
    command = [
        *pinned(LOAD_CPU),
        need_wrk(),
        "-t1",
        f"-c{connections}",
        f"-d{max(1, min(900, round(seconds)))}s",
        "--latency",
        "--timeout",
        "10s",
    ]
    for header in headers:
        command += ["-H", header]
    if script is not None:
        command += ["-s", str(LUA / script)]
    command.append(url)
    if script_args:
        command += ["--", *script_args]
    output = subprocess.run(
        command, capture_output=True, text=True, check=True, timeout=seconds + 120
    ).stdout
    total = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)", output)
    if total is None:
        raise SystemExit(f"bench: cannot read wrk's output:\n{output}")
    took = _ms(total.group(2) + total.group(3)) / 1000
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    result = WrkResult(
        requests=int(total.group(1)),
        seconds=took,
        rate=int(total.group(1)) / took if took else 0.0,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        errors=sum(int(g) for g in errors.groups()) if errors else 0,
        p50_ms=_ms(p50.group(1)) if p50 else float("nan"),
        p99_ms=_ms(p99.group(1)) if p99 else float("nan"),
        output=output,
    )
    if result.non_2xx and not allow_non_2xx:
        raise SystemExit(f"bench: {url} answered {result.non_2xx} non-2xx/3xx:\n{output}")
    return result


# Redis --------------------------------------------------------------------------------


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A throwaway `redis-server` (nothing on disk) pinned to the load CPU; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("bench: redis-server is not installed (Debian: apt-get install redis)")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="dingmw-bench-redis-") as folder:
        command = [
            *[binary, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no"],
            *["--dir", folder, "--loglevel", "warning"],
        ]
        spec = Spec("redis-server", command, port, env=dict(os.environ), cpu=LOAD_CPU, ready=None)
        with servers([spec]):
            yield f"redis://{HOST}:{port}/0"


# Reports ------------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table; floats get a sensible number of digits."""

    def cell(value: object) -> str:
        if isinstance(value, float):
            if value != value:  # NaN
                return "—"
            return f"{value:.3f}" if abs(value) < 10 else f"{value:,.0f}"
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{value:,}"
        return str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def machine() -> str:
    import platform

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.system()} "
        f"{platform.release()}, load average {load:.2f} at the start"
    )


def report(
    out: Path, name: str, title: str, tables: Mapping[str, str], data: Mapping[str, Any]
) -> Path:
    """Print the tables, and write `name.md` and `name.json` into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    text = [f"# {title}", "", machine(), ""]
    for heading, body in tables.items():
        text += [f"## {heading}", "", body, ""]
    markdown = "\n".join(text)
    print(markdown, flush=True)
    (out / f"{name}.md").write_text(markdown, encoding="utf-8")
    (out / f"{name}.json").write_text(
        json.dumps({"machine": machine(), **data}, indent=2, default=str), encoding="utf-8"
    )
    return out / f"{name}.md"


def pyplot() -> Any:
    """matplotlib's pyplot with a non-interactive backend (None when it is not installed)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("bench: matplotlib is not installed; no charts", file=sys.stderr)
        return None
    return plt


def save_chart(plt: Any, figure: Any, out: Path, name: str) -> None:
    """Write `figure` as `out/NAME.png` and let it go."""
    figure.tight_layout()
    figure.savefig(out / f"{name}.png", dpi=120)
    plt.close(figure)


def grouped_bars(
    out: Path,
    name: str,
    *,
    groups: Sequence[str],
    series: dict[str, list[float]],
    ylabel: str,
    title: str,
    goal: tuple[float, str] | None = None,
    size: tuple[float, float] = (7, 3.8),
) -> None:
    """A bar chart with one bar per series in each group (P1's servers, P4's operations)."""
    plt = pyplot()
    if plt is None:
        return
    figure, axes = plt.subplots(figsize=size)
    width = 0.8 / len(series)
    for offset, (label, values) in enumerate(series.items()):
        xs = [i + (offset - (len(series) - 1) / 2) * width for i in range(len(groups))]
        axes.bar(xs, values, width, label=label)
    if goal is not None:
        axes.axhline(goal[0], color="grey", linestyle="--", linewidth=1, label=goal[1])
    axes.set_xticks(range(len(groups)), groups)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.legend(fontsize="small")
    save_chart(plt, figure, out, name)


def checks_failed(failures: Sequence[str]) -> int:
    """Print the gross regressions a smoke run found; the exit status."""
    for failure in failures:
        print(f"bench: REGRESSION: {failure}", file=sys.stderr)
    return 1 if failures else 0
