"""A WSGI site for the gunicorn metrics test: `gunicorn tests.metrics_app:app` with DINGMW_*
set. Every response says which worker process answered it (`X-Worker-Pid`)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from flask import Flask

from dingmw import WSGIMiddleware

site = Flask("metrics-site")


@site.route("/health")
def health() -> str:
    return "ok"


@site.route("/private")
def private() -> str:
    return "private"


site.wsgi_app = WSGIMiddleware(site.wsgi_app)  # type: ignore[method-assign]  # the documented way


def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    def start(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
        return start_response(status, [*headers, ("X-Worker-Pid", str(os.getpid()))], *exc)

    return site(environ, start)
