"""Every benchmark, one after the other: `python bench/run_all.py [--smoke] [--out DIR]`.

`nox -s bench` runs this (`nox -s bench -- --smoke` for the short CI version). With
`--smoke`, each benchmark checks only for gross regressions, measured as ratios (or
counts), and the exit status is 1 when any was found. The tables, JSON and PNG charts
go to `bench/out/` (or `--out`).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import common
import p1_hot_path
import p2_login_storm
import p3_memory
import p4_hub

BENCHMARKS: dict[str, Callable[[Sequence[str] | None], int]] = {
    "p1": p1_hot_path.main,
    "p2": p2_login_storm.main,
    "p3": p3_memory.main,
    "p4": p4_hub.main,
}


def main(argv: Sequence[str] | None = None) -> int:
    parse = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parse.add_argument("--smoke", action="store_true", help="the short CI version")
    parse.add_argument("--out", type=Path, default=common.OUT)
    parse.add_argument("--no-pin", action="store_true", help="do not pin to CPUs")
    parse.add_argument("only", nargs="*", help="some of p1 p2 p3 p4 (default: all)")
    args = parse.parse_args(argv)
    unknown = [name for name in args.only if name not in BENCHMARKS]
    if unknown:
        parse.error(f"unknown benchmark {', '.join(unknown)} (choose from p1 p2 p3 p4)")
    shared = [*(["--smoke"] if args.smoke else []), "--out", str(args.out)]
    shared += ["--no-pin"] if args.no_pin else []
    failed: list[str] = []
    for name in args.only or list(BENCHMARKS):
        started = time.monotonic()
        status = BENCHMARKS[name](shared)
        print(f"bench: {name} took {time.monotonic() - started:.0f} s", flush=True)
        if status:
            failed.append(name)
    if failed:
        print(f"bench: gross regressions in {', '.join(failed)}", file=sys.stderr)
        return 1
    if args.smoke:
        print("bench: smoke run found no gross regression")
    return 0


if __name__ == "__main__":
    sys.exit(main())
