"""Served throughput: the hello-world apps behind uvicorn, loaded by `wrk` on loopback.

This is what a deployment sees: an ASGI server parsing HTTP, the app, and
dingmw's hot path (a logged-in request). Each variant runs in its own
uvicorn process on a free loopback port, pinned to CPU 0 while wrk runs on
CPU 1 (when the machine has two), for a fixed duration; throughput is
reported as a ratio of the bare app's, measured in the same run.

Requires `wrk` (Debian: apt-get install wrk). Run: `python bench/served.py`.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
VARIANTS = {
    "bare": "Starlette hello world",
    "dingmw": "behind dingmw, logged in",
    "sessions": "Starlette SessionMiddleware + login check",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_up(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)  # polling a port that is not open yet
    raise SystemExit(f"bench: server on port {port} did not start")


def pinned(cpu: int) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", str(cpu)]
    return []


def run_variant(variant: str, seconds: int, connections: int) -> float:
    port = free_port()
    server = subprocess.Popen(
        [*pinned(0), sys.executable, str(HERE / "served_apps.py"), variant, str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until_up(port, time.monotonic() + 20)
        assert server.stdout is not None
        cookie = server.stdout.readline().strip()
        command = [
            *pinned(1),
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "-H",
            "Accept: text/html",
        ]
        if cookie:
            command += ["-H", f"Cookie: {cookie}"]
        output = subprocess.run(
            [*command, f"http://127.0.0.1:{port}/"],
            capture_output=True,
            text=True,
            check=True,
            timeout=seconds + 30,
        ).stdout
        if "Non-2xx" in output:
            raise SystemExit(f"bench: {variant} answered non-2xx:\n{output}")
        match = re.search(r"Requests/sec:\s+([\d.]+)", output)
        if match is None:
            raise SystemExit(f"bench: cannot read wrk output:\n{output}")
        return float(match.group(1))
    finally:
        server.terminate()
        server.wait(timeout=10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("bench: wrk is not installed (Debian: apt-get install wrk)")
    rates: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for _ in range(args.rounds):  # interleaved rounds, so drift hits every variant alike
        for variant in VARIANTS:
            rates[variant].append(run_variant(variant, args.seconds, args.connections))
    best = {v: max(r) for v, r in rates.items()}
    print(f"{'variant':<45}  {'req/s':>9}  {'ratio':>6}")
    for variant, label in VARIANTS.items():
        ratio = best[variant] / best["bare"]
        print(f"{label:<45}  {best[variant]:>9.0f}  {ratio:>6.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
