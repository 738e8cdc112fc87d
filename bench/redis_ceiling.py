"""The raw-Redis ceiling for P4: the hub's own Redis commands for one operation, replayed.

    python redis_ceiling.py URL SECONDS CONCURRENCY COMMANDS.json

`COMMANDS.json` is the list of round trips (each a list of commands, each a list of latin-1
strings) that the hub made to Redis for one operation, as recorded by `MONITOR`.
`CONCURRENCY` tasks replay it in a loop for `SECONDS` over one `redis.asyncio` client (the
client the hub's store uses, with its options), each round trip awaited before the next, as
the hub's flow does (a round trip of several commands as one pipeline, as the hub's); prints
`{"operations": N, "seconds": S}`. Nothing else runs in this process: it is what one worker
could do if serving an operation cost nothing but its Redis round trips.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import redis.asyncio

Trips = list[list[list[bytes]]]


def encoded(trips: list[list[list[str]]]) -> Trips:
    """The recorded round trips (latin-1 strings in the JSON) as the bytes the hub sent."""
    return [[[part.encode("latin-1") for part in command] for command in trip] for trip in trips]


async def one_operation(client: redis.asyncio.Redis, trips: Trips) -> None:
    """One operation's round trips, each awaited before the next, as the hub's flow does."""
    for trip in trips:
        if len(trip) == 1:
            await client.execute_command(*trip[0])  # type: ignore[no-untyped-call]
            continue
        pipe = client.pipeline(transaction=False)
        for command in trip:
            pipe.execute_command(*command)
        await pipe.execute()


async def replay(url: str, seconds: float, concurrency: int, trips: list[list[list[str]]]) -> None:
    client = redis.asyncio.Redis.from_url(url, decode_responses=True)
    args = encoded(trips)
    done = 0
    started = time.perf_counter()
    deadline = started + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await one_operation(client, args)
            done += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    took = time.perf_counter() - started
    await client.aclose()
    print(json.dumps({"operations": done, "seconds": took}))


def main() -> None:
    url, seconds, concurrency, path = sys.argv[1:5]
    commands = json.loads(Path(path).read_text(encoding="utf-8"))
    asyncio.run(replay(url, float(seconds), int(concurrency), commands))


if __name__ == "__main__":
    main()
