"""Listening sockets for the commands (`dingmw demo`, `hub`, `fake-dingtalk`).

A port that is taken (or a host that is not this machine's) is `CannotListen`,
which the command line turns into one line suggesting `--port`, not a traceback.
"""

from __future__ import annotations

import errno
import socket


class CannotListen(OSError):
    """`bind()` failed; `str()` says why, in one line, with what to try."""

    def __init__(self, host: str, port: int, exc: OSError) -> None:
        super().__init__(exc.errno, exc.strerror)
        where = f"{browser_host(host)}:{port}"
        if exc.errno == errno.EADDRINUSE:
            self.line = f"{where} is already in use; choose another port with --port {port + 1}"
        elif exc.errno == errno.EACCES:
            self.line = f"no permission to listen on {where}; choose a port above 1023 with --port"
        else:
            reason = exc.strerror or type(exc).__name__
            self.line = f"cannot listen on {where}: {reason}; check --host and --port"

    def __str__(self) -> str:
        return self.line


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on `host:port` (port 0: a free one), inheritable by workers."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise CannotListen(host, port, exc) from None
    sock.set_inheritable(True)
    return sock


def browser_host(host: str) -> str:
    """The address a browser on this machine uses for a server bound to `host`."""
    if host in ("0.0.0.0", ""):  # noqa: S104  # comparing, not binding
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host
