"""Run ASGI apps (uvicorn) and WSGI apps (werkzeug) on free loopback ports, in threads.

Each helper is a context manager that yields the server's base URL (no trailing slash)
once the server accepts connections, and stops the server when the block ends. Nothing
here sleeps: uvicorn's start is an event set right after its `startup()`, and werkzeug's
socket is listening before its thread starts. uvicorn runs the ASGI lifespan when the app
speaks it (`lifespan="auto"`), so dingmw's middleware and hub close their pooled HTTP
clients as the server stops.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from werkzeug.serving import WSGIRequestHandler, make_server

from dingmw.demo import ReadyServer

HOST = "127.0.0.1"
START_TIMEOUT = 15.0
STOP_TIMEOUT = 15.0


def free_socket(host: str = HOST) -> socket.socket:
    """A TCP socket bound to a free port of `host` (the kernel picks it), listening."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    sock.listen(128)
    return sock


@contextmanager
def serve_asgi(
    app: Callable[..., Any], *, host: str = HOST, sock: socket.socket | None = None
) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a free port of `host` (or on `sock`, bound and
    listening already); yields `http://host:port`."""
    sock = sock or free_socket(host)
    port: int = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        lifespan="auto",
        log_level="warning",
        access_log=False,
        ws="none",
        timeout_graceful_shutdown=5,
    )
    server = ReadyServer(config)
    thread = threading.Thread(
        target=server.run_in_thread, args=([sock],), name=f"uvicorn-{port}", daemon=True
    )
    thread.start()
    try:
        if not server.ready.wait(START_TIMEOUT) or not server.started:
            raise RuntimeError(f"uvicorn on port {port} did not start (see the log above)")
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(STOP_TIMEOUT)
        sock.close()
    if thread.is_alive():
        raise RuntimeError(f"uvicorn on port {port} did not stop within {STOP_TIMEOUT} s")


class _QuietHandler(WSGIRequestHandler):
    """werkzeug's request handler without the access log on stderr."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


@contextmanager
def serve_wsgi(app: Any, *, host: str = HOST, sock: socket.socket | None = None) -> Iterator[str]:
    """Serve a WSGI app with werkzeug's threaded server on a free port (or on `sock`, bound
    and listening already); yields its URL."""
    fd = sock.fileno() if sock is not None else None
    server = make_server(host, 0, app, threaded=True, request_handler=_QuietHandler, fd=fd)
    port: int = sock.getsockname()[1] if sock is not None else server.server_port
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name=f"werkzeug-{port}",
        daemon=True,
    )
    thread.start()  # the socket already listens: connections queue until the loop runs
    try:
        yield f"http://{host}:{port}"
    finally:
        server.shutdown()  # returns once serve_forever has stopped
        thread.join(STOP_TIMEOUT)
        server.server_close()
        if sock is not None:
            sock.close()  # werkzeug served a duplicate of its descriptor
    if thread.is_alive():
        raise RuntimeError(f"werkzeug on port {port} did not stop within {STOP_TIMEOUT} s")
