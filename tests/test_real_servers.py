"""The attacks of a security review, rerun against real server processes on loopback:
uvicorn (h11 and httptools), gunicorn and werkzeug's server, each running
`tests/echo_apps.py` (dingmw around an app that answers what it sees)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dingmw import Identity, Settings, WSGIMiddleware
from dingmw.session_cache import DEFAULT_BAD_BYTES

from .processes import stop_process, wait_answering
from .redis_server import free_port
from .support import SECRET_KEY

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 30.0
APP_KEY = "real-server-app"
APP_SECRET = "real-server-app-secret-0123456789"
PERSON = Identity(unionid="u-real-person", userid="realperson", name="Real Person", flow="oauth2")
ENV = {
    "DINGMW_APP_KEY": APP_KEY,
    "DINGMW_APP_SECRET": APP_SECRET,
    "DINGMW_SECRET_KEY": SECRET_KEY,
    "DINGMW_PUBLIC_PATHS": "/public",
    "DINGMW_STRIP_HEADERS": "X-Custom-User",
    "PYTHONUNBUFFERED": "1",
}
MIB = 1024 * 1024


def session_cookie(identity: Identity = PERSON) -> dict[str, str]:
    """A session the servers accept (same settings, so the same keys and audience)."""
    settings = Settings(
        app_key=APP_KEY, app_secret=APP_SECRET, secret_keys=(SECRET_KEY,), public_paths=("/public",)
    )
    sessions = WSGIMiddleware(lambda environ, start: [], settings).core.sessions
    name, _, value = sessions.issue(identity, secure=False).split(";", 1)[0].partition("=")
    return {name: value}


class Server:
    """One server process on a free port, its output (access log included) in a file."""

    def __init__(self, kind: str, tmp: Path, env: dict[str, str] | None = None) -> None:
        self.kind = kind
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp / f"{kind}.log"
        port = str(self.port)
        commands = {
            "uvicorn-h11": ["-m", "uvicorn", "tests.echo_apps:asgi_app", "--http", "h11"],
            "uvicorn-httptools": [
                "-m",
                "uvicorn",
                "tests.echo_apps:asgi_app",
                "--http",
                "httptools",
            ],
            "gunicorn": [
                "-m",
                "gunicorn",
                "tests.echo_apps:wsgi_app",
                "--workers",
                "1",
                "--access-logfile",
                "-",
                "--access-logformat",
                '%(h)s "%(r)s" %(s)s %(U)s %(q)s "%({referer}i)s"',
            ],
            "werkzeug": [
                "-c",
                "import sys; from werkzeug.serving import run_simple; "
                "from tests.echo_apps import wsgi_app; "
                "run_simple('127.0.0.1', int(sys.argv[1]), wsgi_app, threaded=True)",
            ],
        }
        args = [sys.executable, *commands[kind]]
        if kind.startswith("uvicorn"):
            args += ["--port", port, "--lifespan", "off"]
        elif kind == "gunicorn":
            args += ["--bind", f"127.0.0.1:{port}"]
        else:
            args.append(port)
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            args,
            env={**os.environ, **ENV, **(env or {})},
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self) -> None:
        wait_answering(self.url + "/public", self.proc, START_TIMEOUT, self.log)

    def worker_pid(self) -> int:
        """The process that runs the app (gunicorn's worker, else the server itself)."""
        if self.kind != "gunicorn":
            return self.proc.pid
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        return int(children.split()[0])

    def rss(self) -> int:
        for line in Path(f"/proc/{self.worker_pid()}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text("utf-8", errors="replace")

    def stop(self) -> str:
        stop_process(self.proc, 15)
        self._log.close()
        return self.log_path.read_text("utf-8", errors="replace")


@pytest.fixture(params=["uvicorn-h11", "uvicorn-httptools", "gunicorn", "werkzeug"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    running = Server(request.param, tmp_path)
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


SPOOFED = {
    "X-DingTalk-UnionId": "u-admin",
    "X-DingTalk-UserId": "admin",
    "X-Dingtalk-Anything": "x",
    "Remote-User": "root",
    "X-Remote-User": "root",
    "X-Forwarded-User": "root",
    "X-Forwarded-Email": "root@example.com",
    "X-Forwarded-Preferred-Username": "root",
    "X-Custom-User": "root",  # DINGMW_STRIP_HEADERS
    "Remote_User": "root",  # underscores: some servers pass it, frameworks read it as Remote-User
    "Authorization": "Basic cm9vdDp4",  # root:x, which gunicorn may turn into REMOTE_USER
}


def test_spoofed_identity_headers_never_reach_the_app(server: Server) -> None:
    with httpx.Client(base_url=server.url, cookies=session_cookie()) as client:
        seen = client.get("/private", headers=SPOOFED).json()
        public = httpx.get(server.url + "/public", headers=SPOOFED).json()
    assert seen["unionid"] == PERSON.unionid
    for answer in (seen, public):
        leaked = {
            name
            for name in answer["headers"]
            if name.replace("_", "-")
            in {
                "remote-user",
                "x-remote-user",
                "x-forwarded-user",
                "x-forwarded-email",
                "x-forwarded-preferred-username",
                "x-custom-user",
            }
            or name.replace("_", "-").startswith("x-dingtalk-")
        }
        assert leaked == set(), f"{server.kind} passed {leaked}"
    if server.kind in ("gunicorn", "werkzeug"):
        assert seen["remote_user"] == PERSON.userid
        assert public["remote_user"] is None
    assert seen["headers"]["authorization"] == "Basic cm9vdDp4"  # not identity: the app's own


def test_access_logs_mask_one_time_codes(server: Server) -> None:
    with httpx.Client(base_url=server.url) as client:
        client.get("/dingtalk/callback", params={"code": "SECRETCODE1", "state": "s" * 32})
        client.get("/dingtalk/callback", params={"authCode": "SECRETCODE2", "state": "x"})
        client.get("/dingtalk/callback", params={"jsapi_code": "SECRETCODE3", "state": "y"})
        client.get(
            "/public",
            params={"q": "1"},
            headers={"referer": f"{server.url}/dingtalk/callback?code=SECRETCODE4&state=z"},
        )
    log = server.stop()
    assert "/dingtalk/callback" in log, log  # the access log is on
    assert "SECRETCODE" not in log, log
    assert "code=***" in log


JUNK = 10 * MIB
JUNK_REQUESTS = 150


def test_junk_cookies_beside_a_session_cost_no_memory(tmp_path: Path) -> None:
    """150 requests, each one valid session plus a unique 10 MB cookie (the review's attack:
    +1,447 MB when the cache was keyed by the whole header), under uvicorn with httptools.

    What the server keeps across requests is measured, not what a request holds while it
    is served: the few copies of its 10 MB header (the parser's, the scope's, the joined
    `Cookie`) live until the server reads the next request on the connection, so RSS is
    read after a small request that follows each junk one. Blocks of 1 MiB or more are
    mapped and unmapped one by one (`MALLOC_MMAP_THRESHOLD_`), so RSS follows what is alive
    rather than where glibc's heap happened to put the freed copies. Keyed by the value
    alone, the cache keeps one entry: no 10 MB header outlives its request.
    """
    server = Server("uvicorn-httptools", tmp_path, env={"MALLOC_MMAP_THRESHOLD_": str(MIB)})
    try:
        server.wait_ready()
        name, value = next(iter(session_cookie().items()))
        samples: list[int] = []
        with httpx.Client(base_url=server.url, timeout=60) as client:

            def private(cookie: str) -> None:
                response = client.get("/private", headers={"cookie": cookie})
                assert response.status_code == 200
                assert response.json()["unionid"] == PERSON.unionid

            private(f"{name}={value}")  # the session verified and cached before measuring
            start = server.rss()
            for i in range(JUNK_REQUESTS):
                private(f"junk{i}=" + chr(ord("a") + i % 26) * JUNK + f"; {name}={value}")
                private(f"{name}={value}")  # the server lets go of the junk request
                samples.append(server.rss())
    finally:
        server.stop()
    grown = max(samples) - start
    # (Keyed by the whole header, the cache grew by 10 MB a request: +1.4 GB here.)
    trend = " ".join(f"{(sample - start) / MIB:.0f}" for sample in samples[::10])
    assert grown < 2 * JUNK, f"RSS grew by {grown / MIB:.1f} MiB (every 10th, MiB: {trend})"


def test_a_flood_of_distinct_bad_session_cookies_stays_within_the_bound(tmp_path: Path) -> None:
    """Bad session cookies are remembered (so a repeat costs no decryption) within 4 MiB."""
    server = Server("uvicorn-httptools", tmp_path)
    flood = 6000
    try:
        server.wait_ready()
        name = "dingmw_session"
        with httpx.Client(base_url=server.url) as client:
            for i in range(50):
                client.get("/public", headers={"cookie": f"{name}={i:08d}{'A' * 3900}"})
            baseline = server.rss()
            for i in range(50, flood):
                client.get("/public", headers={"cookie": f"{name}={i:08d}{'A' * 3900}"})
            grown = server.rss() - baseline
    finally:
        server.stop()
    unbounded = flood * 3908  # the values alone, had every one been kept
    assert grown < DEFAULT_BAD_BYTES + 4 * MIB < unbounded, f"RSS grew by {grown / MIB:.1f} MiB"
