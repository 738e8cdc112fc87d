"""The nginx `auth_request` configuration of docs/deployment.md, run by a real nginx: the
application behind it sees the person dingmw vouched for and none of the identity headers a
client sent."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from dingmw import ASGIMiddleware, Identity, Settings

from .redis_server import free_port
from .servers import serve_asgi
from .support import SECRET_KEY

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "deployment.md"
START_TIMEOUT = 15.0
SETTINGS = Settings(
    app_key="nginx-test-app",
    app_secret="nginx-test-app-secret-0123456789",
    secret_keys=(SECRET_KEY,),
    base_url="https://intra.example.com",
)
PERSON = Identity(unionid="u-nginx", userid="nginxuser", name="Ng Inx", flow="oauth2")


def documented_config() -> str:
    """The `server` block of the documented `auth_request` setup, as written in the docs."""
    blocks = re.findall(r"```nginx\n(.*?)```", DOC.read_text("utf-8"), re.S)
    (block,) = [b for b in blocks if "auth_request /_dingtalk_auth" in b]
    return str(block)


async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The application behind nginx: answers the headers it got."""
    if scope["type"] != "http":
        return
    headers: dict[str, list[str]] = {}
    for name, value in scope["headers"]:
        headers.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
    body = json.dumps({"path": scope["path"], "headers": headers}).encode()
    start = {"type": "http.response.start", "status": 200, "headers": []}
    await send(start)
    await send({"type": "http.response.body", "body": body})


async def nothing(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 404, "headers": []})
    await send({"type": "http.response.body", "body": b"not found\n"})


def wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"nginx exited: {log.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)  # polling a port that is not listening yet
    raise RuntimeError("nginx did not start")


@pytest.fixture(scope="module")
def auth_service() -> Iterator[tuple[str, ASGIMiddleware]]:
    service = ASGIMiddleware(nothing, SETTINGS)
    with serve_asgi(service) as url:
        yield url, service


@pytest.fixture(scope="module")
def nginx(
    auth_service: tuple[str, ASGIMiddleware], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    executable = shutil.which("nginx") or "/usr/sbin/nginx"
    assert Path(executable).exists(), "nginx is required (scripts/bootstrap installs it)"
    auth_url, _ = auth_service
    with serve_asgi(echo) as app_url:
        tmp = tmp_path_factory.mktemp("nginx")
        port = free_port()
        server = (
            documented_config()
            .replace("listen 443 ssl;", f"listen 127.0.0.1:{port};")
            .replace("server 127.0.0.1:8100;", f"server {auth_url.removeprefix('http://')};")
            .replace("server 127.0.0.1:8200;", f"server {app_url.removeprefix('http://')};")
        )
        user = "user root;\n" if os.geteuid() == 0 else ""
        temp = " ".join(
            f"{name}_temp_path {tmp}/{name};" for name in ("client_body", "proxy", "fastcgi")
        )
        temp += f" uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;"
        conf = tmp / "nginx.conf"
        conf.write_text(
            f"{user}daemon off;\nworker_processes 1;\npid {tmp}/nginx.pid;\n"
            f"error_log {tmp}/error.log;\nevents {{ worker_connections 64; }}\n"
            f"http {{\n access_log off;\n {temp}\n{server}\n}}\n",
            encoding="utf-8",
        )
        log = tmp / "error.log"
        proc = subprocess.Popen(
            [executable, "-p", str(tmp), "-e", str(log), "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_listening(port, proc, log)
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(10)


SPOOFED = {
    "X-DingTalk-UnionId": "u-admin",
    "X-DingTalk-UserId": "admin",
    "X-DingTalk-Name": "Admin",
    "X-DingTalk-Email": "admin@example.com",
    "X-DingTalk-Dept-Ids": "1",
    "Remote-User": "root",
    "X-Remote-User": "root",
    "X-Forwarded-User": "root",
    "X-Forwarded-Email": "root@example.com",
    "X-Forwarded-Preferred-Username": "root",
    "Remote_User": "root",
}


def session_cookie(service: ASGIMiddleware) -> str:
    set_cookie = service.core.sessions.issue(PERSON, secure=True)
    return set_cookie.split(";", 1)[0]


def test_the_app_behind_nginx_sees_only_the_person_dingmw_vouched_for(
    nginx: str, auth_service: tuple[str, ASGIMiddleware]
) -> None:
    _, service = auth_service
    headers = {**SPOOFED, "host": "intra.example.com", "cookie": session_cookie(service)}
    response = httpx.get(f"{nginx}/reports", headers=headers)
    assert response.status_code == 200, response.text
    seen = response.json()["headers"]
    assert seen["x-dingtalk-unionid"] == ["u-nginx"]
    assert seen["x-dingtalk-userid"] == ["nginxuser"]
    assert seen["x-dingtalk-name"] == ["Ng Inx"]
    for name in ("x-dingtalk-email", "x-dingtalk-dept-ids"):  # unknown: removed, not forwarded
        assert name not in seen
    for name in (
        "remote-user",
        "x-remote-user",
        "x-forwarded-user",
        "x-forwarded-email",
        "x-forwarded-preferred-username",
        "remote_user",
    ):
        assert name not in seen, f"nginx passed the client's {name}"


def test_without_a_session_nginx_never_reaches_the_app(nginx: str) -> None:
    headers = {**SPOOFED, "host": "intra.example.com", "accept": "text/html"}
    response = httpx.get(f"{nginx}/reports", headers=headers)
    assert response.status_code == 302
    assert response.headers["location"] == "/dingtalk/login?next=/reports"
    api = httpx.get(f"{nginx}/reports", headers={**SPOOFED, "accept": "application/json"})
    assert api.status_code == 401
    assert api.json()["error"] == "login_required"
