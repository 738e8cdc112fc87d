"""What importing dingmw costs: `python -X importtime` for `import dingmw` and each adapter.

Each statement runs in a fresh interpreter, several times; the best run is reported: the
milliseconds `-X importtime` counts for everything the statement imports (the top-level
imports' cumulative times, less what an empty statement imports). Run:
`python bench/import_time.py`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

STATEMENTS = (
    "import dingmw",
    "from dingmw import WSGIMiddleware",
    "from dingmw import ASGIMiddleware",
    "import dingmw.flask",
    "import dingmw.fastapi",
    "import dingmw.django",
)


def import_ms(statement: str) -> float | None:
    """What `-X importtime` counts for `statement` (ms), or None when it fails."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        return None
    total = 0
    for line in out.stderr.splitlines():
        # "import time: self [us] | cumulative | imported package"; nested ones are indented
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit() and not parts[2].startswith("  "):
            total += int(parts[1])
    return total / 1000


def best(statement: str, runs: int) -> float | None:
    timed = [t for t in (import_ms(statement) for _ in range(runs)) if t is not None]
    return min(timed) if timed else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    baseline = best("pass", runs) or 0.0
    for statement in STATEMENTS:
        ms = best(statement, runs)
        shown = f"{ms - baseline:7.1f} ms" if ms is not None else "   (not importable here)"
        print(f"{statement:36} {shown}")


if __name__ == "__main__":
    main()
