"""One benchmark variant served by uvicorn: `python served_apps.py VARIANT PORT`.

Prints the session cookie the load generator must send (empty for the bare app)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hot_path import (  # the bench folder is not a package
    SETTINGS,
    session_cookie,
    starlette_app,
    starlette_sessions,
)

from dingmw import ASGIMiddleware


def main() -> None:
    variant, port = sys.argv[1], int(sys.argv[2])
    app: Any
    if variant == "bare":
        # The same cookie a logged-in browser sends, so the baseline parses it too.
        app, cookie = starlette_app(), session_cookie()
    elif variant == "dingmw":
        app, cookie = ASGIMiddleware(starlette_app(), SETTINGS), session_cookie()
    elif variant == "sessions":
        app, cookie = starlette_sessions()
    else:
        raise SystemExit(f"unknown variant {variant}")
    print(cookie, flush=True)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="error", access_log=False)


if __name__ == "__main__":
    main()
