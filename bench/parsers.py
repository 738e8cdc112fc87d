"""What the `Cookie` parser costs, in-process: `cookie_value(header, name)` per call.

`cookie_value` runs on every request whose `Cookie` header is not yet in the
session cache (a first request, a request with no session). Run:
`python bench/parsers.py`; it prints microseconds per call for typical headers (the best of 5 runs).
"""

from __future__ import annotations

import timeit

from dingmw.core.http import cookie_value

SESSION = "dingmw_session=" + "x" * 600 + "." + "y" * 43
HEADERS = {
    "session only": SESSION,
    "session among others": f"_ga=GA1.1.123.456; csrftoken=abcdef0123456789; {SESSION}; theme=dark",
    "no session": "_ga=GA1.1.123.456; csrftoken=abcdef0123456789; theme=dark",
    "empty": "",
    "a quoted value": f'_ga=GA1.1.123.456; pref="a; b=c"; {SESSION}',
}


def main(number: int = 50_000) -> None:
    for label, header in HEADERS.items():

        def call(header: str = header) -> None:
            cookie_value(header, "dingmw_session")

        seconds = min(timeit.repeat(call, number=number, repeat=5))
        print(f"{label:24} {seconds / number * 1e6:6.3f} µs/call")


if __name__ == "__main__":
    main()
