"""A real `redis-server` for tests, on a free loopback port, with nothing on disk.

    server = RedisServer()          # or RedisServer(password="...")
    server.start()                  # returns once it answers PING
    server.url                      # redis://127.0.0.1:<port>/0
    server.stop(); server.start()   # a restart keeps the port (and loses the data)
    server.close()                  # stop and remove its directory

`redis-server` is found on PATH (or `$REDIS_SERVER`); when it is missing,
`start()` raises `RedisServerMissing` with instructions, so a fixture can
fail loudly instead of skipping.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from .processes import stop_process

HOST = "127.0.0.1"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


class RedisServerMissing(RuntimeError):
    pass


class RedisServerError(RuntimeError):
    pass


def find_redis_server() -> str:
    found = os.environ.get("REDIS_SERVER") or shutil.which("redis-server")
    if not found:
        raise RedisServerMissing(
            "redis-server is not installed (nor named by $REDIS_SERVER); the Redis store "
            "tests need a real one and are required in CI: apt-get install redis-server "
            "(Debian/Ubuntu) or brew install redis (macOS)"
        )
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def ping(port: int, timeout: float = 0.5) -> bytes:
    """The first reply line to a raw `PING` (`+PONG`, or `-NOAUTH ...` with a password)."""
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.sendall(b"*1\r\n$4\r\nPING\r\n")
        reply = b""
        while not reply.endswith(b"\r\n"):
            chunk = sock.recv(256)
            if not chunk:
                break
            reply += chunk
    return reply.strip()


class Started:
    """`with X() as x:` starts `x` and closes it after, and when `start()` fails midway."""

    def start(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class RedisServer(Started):
    def __init__(
        self,
        *,
        port: int | None = None,
        password: str | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.executable = find_redis_server()
        self.extra_args = list(extra_args)
        self.port = port or free_port()
        # A port picked here may be taken before redis binds it: pick again, until first started.
        self._may_move = port is None
        self.password = password
        self.dir = Path(tempfile.mkdtemp(prefix="dingmw-redis-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}{HOST}:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        if self.running:
            return
        for attempt in range(3 if self._may_move else 1):
            if attempt:
                self.port = free_port()
            try:
                self._spawn()
            except RedisServerError:
                if not self._may_move or attempt == 2:
                    raise
            else:
                self._may_move = False
                return

    def _spawn(self) -> None:
        args = [
            self.executable,
            "--port", str(self.port),
            "--bind", HOST,
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.dir),
            "--logfile", "",
            "--daemonize", "no",
        ]  # fmt: skip
        if self.password:
            args += ["--requirepass", self.password]
        args += self.extra_args
        log = (self.dir / "redis.log").open("ab")
        with log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        self._wait_ready()

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise RedisServerError(
                    f"redis-server exited with {self.process.returncode} on port {self.port}:\n"
                    + self.log_tail()
                )
            with contextlib.suppress(OSError):
                reply = ping(self.port)
                if reply == b"+PONG" or reply.startswith(b"-NOAUTH"):
                    return
            if time.monotonic() > deadline:
                self.stop()
                raise RedisServerError(
                    f"redis-server did not answer PING on port {self.port} within "
                    f"{START_TIMEOUT:.0f}s:\n" + self.log_tail()
                )
            time.sleep(0.01)

    def stop(self) -> None:
        """Stop the server (its data is lost); `start()` brings it back on the same port."""
        process, self.process = self.process, None
        if process is not None:
            stop_process(process, STOP_TIMEOUT)

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = (self.dir / "redis.log").read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])
