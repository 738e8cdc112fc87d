"""The server processes the tests start: waiting until one answers, stopping one."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from typing import Any

import httpx


def wait_answering(
    url: str, process: subprocess.Popen[Any], timeout: float, output: Callable[[], str]
) -> None:
    """Poll `url` until it answers 200; RuntimeError with `output()` (the process's log) when
    the process exits first or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server of {url} exited: {output()}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)  # polling a port that is not listening yet
    raise RuntimeError(f"{url} did not answer within {timeout} s: {output()}")


def stop_process(process: subprocess.Popen[Any], timeout: float, sig: int = signal.SIGTERM) -> None:
    """Send `sig` (SIGINT: as Ctrl-C would) and wait for the process to end; after `timeout`
    seconds, kill it."""
    if process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout)
