"""The `dingmw` command: `demo` as a real process (HTTP, then a real Chromium), and `check`
with good, bad and live configurations (the live one against the fake on a free port)."""

from __future__ import annotations

import os
import queue
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import expect

from dingmw.checks import key_strength
from dingmw.cli import main
from dingmw.config import MIN_SECRET_KEY_LENGTH
from dingmw.testing import DEFAULT_APP_KEY, DEFAULT_APP_SECRET, ZHANGSAN

from .conftest import ContextFactory, FakeServer
from .processes import stop_process, wait_answering
from .redis_server import free_port
from .support import FLOWS, HTML, page_config

START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
OPEN_RE = re.compile(r"Open (http://[^\s/]+:(\d+))/ in your browser")
FAKE_RE = re.compile(r"with a fake DingTalk at (http://\S+)")


# --- dingmw demo ------------------------------------------------------------------------------


@dataclass
class Demo:
    process: subprocess.Popen[str]
    url: str  # the example app, no trailing slash
    fake_url: str
    output: list[str]


def _pump(stream: Iterator[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)  # end of output: the process has closed stdout


@contextmanager
def running_demo(*extra: str) -> Iterator[Demo]:
    """`python -m dingmw demo --port 0 ...`, until its "Open http://...:PORT/" line; Ctrl-C
    (SIGINT) at the end. The caller checks `process.returncode` after the block."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DINGMW_")}
    env["PYTHONUNBUFFERED"] = "1"
    process = subprocess.Popen(
        [sys.executable, "-m", "dingmw", "demo", "--host", "127.0.0.1", "--port", "0", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
        env=env,
    )
    assert process.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()
    output: list[str] = []
    threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True).start()
    try:
        deadline = time.monotonic() + START_TIMEOUT
        fake_url = url = None
        while url is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"no 'Open http://...' line within {START_TIMEOUT} s: {output}"
                )
            try:
                line = lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"dingmw demo exited early ({process.wait()}): {output}")
            output.append(line)
            if found := FAKE_RE.search(line):
                fake_url = found.group(1)
            if found := OPEN_RE.search(line):
                url = found.group(1)
                assert int(found.group(2)) > 0, line  # --port 0 printed the real port
        assert fake_url is not None, output
        yield Demo(process=process, url=url, fake_url=fake_url, output=output)
    finally:
        stop_process(process, STOP_TIMEOUT, signal.SIGINT)
        process.stdout.close()


def test_demo_serves_over_http() -> None:
    with running_demo() as demo:
        assert urlsplit(demo.url).port != urlsplit(demo.fake_url).port
        with httpx.Client(base_url=demo.url, follow_redirects=False, timeout=10) as client:
            home = client.get("/", headers=HTML)
            assert home.status_code == 302
            assert home.headers["location"] == "/dingtalk/login?next=/"

            login = client.get(home.headers["location"], headers=HTML)
            assert login.status_code == 200
            assert login.headers["content-type"].startswith("text/html")
            script = f"{demo.fake_url}/h5-dingtalk-login/ddlogin.js"
            assert f'<script src="{script}" nonce="' in login.text
            config = page_config(login)
            assert config["flow"] == "oauth2"
            assert config["login_origin"] == demo.fake_url
            assert config["authorize_url"].startswith(f"{demo.fake_url}/oauth2/auth?")
            assert DEFAULT_APP_SECRET not in login.text

            health = client.get("/health")
            assert health.status_code == 200
            assert health.text == "ok"

            widget = httpx.get(script, timeout=10)
            assert widget.status_code == 200
            assert "DTFrameLogin" in widget.text
    assert demo.process.returncode == 0, demo.output


@pytest.mark.browser
@pytest.mark.parametrize("flow", FLOWS)
def test_demo_login_in_chromium(flow: str, context_factory: ContextFactory) -> None:
    with running_demo("--flow", flow) as demo:
        page = context_factory().new_page()
        page.goto(demo.url + "/")
        page.wait_for_url(lambda url: url.startswith(demo.url + "/dingtalk/login?"))
        page.wait_for_load_state("load")
        frame = page.frame_locator("#dingmw-qr iframe")
        frame.locator(f'.fake-dingtalk-user[data-unionid="{ZHANGSAN.unionid}"]').click()
        page.wait_for_url(lambda url: url == demo.url + "/")
        expect(page.locator("#greeting")).to_have_text(f"Hello, {ZHANGSAN.nick}")
        expect(page.locator("#identity")).to_contain_text(ZHANGSAN.unionid)
        expect(page.locator("body")).to_contain_text(f"({flow} flow)")
        page.locator("#logout").click()
        page.wait_for_url(lambda url: url.startswith(demo.url + "/dingtalk/login?"))
        page.context.close()
    assert demo.process.returncode == 0, demo.output


# --- dingmw check -----------------------------------------------------------------------------

APP_SECRET = "app-secret-never-printed-0123456789"
SECRET_KEY = "signing-key-never-printed-0123456789-abcdef"
OLD_KEY = "old-signing-key-never-printed-0123456789-xyz"
CORP_SECRET = "corp-secret-never-printed-0123456789"
REDIS_PASSWORD = "redis-password-never-printed"
SECRETS = (APP_SECRET, SECRET_KEY, OLD_KEY, CORP_SECRET, REDIS_PASSWORD)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No DINGMW_* variable from the outside; the test sets what it needs."""
    for name in list(os.environ):
        if name.startswith("DINGMW_"):
            monkeypatch.delenv(name)
    return monkeypatch


def good_env(monkeypatch: pytest.MonkeyPatch, **extra: str) -> None:
    values = {
        "DINGMW_APP_KEY": DEFAULT_APP_KEY,
        "DINGMW_APP_SECRET": APP_SECRET,
        "DINGMW_SECRET_KEY": f"{SECRET_KEY},{OLD_KEY}",
        **extra,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def run_check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["check", *args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"a secret was printed: {text!r}"


def test_check_good_environment(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    good_env(
        env,
        DINGMW_FLOW="sns",
        DINGMW_ENRICH="detail",
        DINGMW_CORP_APP_KEY="dingcorpkey",
        DINGMW_CORP_APP_SECRET=CORP_SECRET,
        DINGMW_STORE_URL=f"redis://:{REDIS_PASSWORD}@localhost:6379/0",
        DINGMW_PUBLIC_PATHS="/health,/static/*",
    )
    code, out, err = run_check(capsys)
    assert code == 0, err
    lines = {line.split()[0]: line.split(maxsplit=1)[1] for line in out.splitlines()}
    assert lines["DINGMW_FLOW"] == "sns"
    assert lines["DINGMW_APP_KEY"] == DEFAULT_APP_KEY
    assert lines["DINGMW_APP_SECRET"] == f"(secret: {len(APP_SECRET)} characters)"
    assert lines["DINGMW_SECRET_KEY"] == "(secret: 2 values)"
    assert lines["DINGMW_CORP_APP_KEY"] == "dingcorpkey"
    assert lines["DINGMW_STORE_URL"] == "redis://localhost:6379/0"
    assert lines["DINGMW_PUBLIC_PATHS"] == "/health, /static/*"
    assert "DINGMW_COOKIE_NAME" not in lines  # left at its default
    assert "configuration OK" in out
    assert_no_secret(out, err)


def test_check_reports_every_problem_at_once(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An empty environment plus three mistakes: one run names all of them, one line each."""
    env.setenv("DINGMW_SESSION_MAX_AGE", "8h")
    env.setenv("DINGMW_BASE_URL", f"https://admin:{REDIS_PASSWORD}@[intra.example.com/")
    env.setenv("DINGMW_PUBLIC_PATH", "/health")
    env.setenv("DINGMW_CORP_APP_SECRET", CORP_SECRET)
    code, out, err = run_check(capsys)
    assert code == 1
    assert "configuration OK" not in out
    lines = err.splitlines()
    for name in (
        "DINGMW_APP_KEY is required",
        "DINGMW_APP_SECRET is required",
        "DINGMW_SECRET_KEY is required",
        "DINGMW_SESSION_MAX_AGE must be a whole number of seconds",
        "DINGMW_BASE_URL is not a valid URL",
        "DINGMW_CORP_APP_KEY and DINGMW_CORP_APP_SECRET must be set together",
        "DINGMW_PUBLIC_PATH is not a dingmw setting and is ignored "
        "(did you mean DINGMW_PUBLIC_PATHS?)",
    ):
        assert sum(name in line for line in lines) == 1, (name, err)
    assert len(lines) == 7, err
    assert "Traceback" not in err
    assert_no_secret(out, err)


def test_check_never_prints_a_password_in_a_url(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    good_env(env, DINGMW_BASE_URL=f"https://admin:{REDIS_PASSWORD}@intra.example.com/app")
    code, out, err = run_check(capsys)
    assert code == 0, err
    assert "https://intra.example.com/app" in out
    assert_no_secret(out, err)


@pytest.mark.parametrize(
    ("changes", "variable"),
    [
        ({"DINGMW_APP_SECRET": None}, "DINGMW_APP_SECRET"),
        ({"DINGMW_APP_KEY": None}, "DINGMW_APP_KEY"),
        ({"DINGMW_SECRET_KEY": None}, "DINGMW_SECRET_KEY"),
        ({"DINGMW_SECRET_KEY": "too-short-" + SECRET_KEY[:12]}, "DINGMW_SECRET_KEY"),
        ({"DINGMW_FLOW": "carrier-pigeon"}, "DINGMW_FLOW"),
        ({"DINGMW_ENRICH": "everything"}, "DINGMW_ENRICH"),
        ({"DINGMW_SESSION_MAX_AGE": "a while"}, "DINGMW_SESSION_MAX_AGE"),
        ({"DINGMW_OAPI_URL": "ftp://oapi.example"}, "DINGMW_OAPI_URL"),
        ({"DINGMW_CORP_APP_SECRET": CORP_SECRET}, "DINGMW_CORP_APP_KEY"),
    ],
)
def test_check_bad_environment(
    changes: dict[str, str | None],
    variable: str,
    env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    good_env(env)
    for name, value in changes.items():
        if value is None:
            env.delenv(name)
        else:
            env.setenv(name, value)
    code, out, err = run_check(capsys)
    assert code == 1
    assert variable in err
    assert "configuration OK" not in out
    assert_no_secret(out, err)
    for value in changes.values():
        if value and "too-short" in value:
            assert value not in out + err


def test_check_as_a_process() -> None:
    """The same through `python -m dingmw`, with the environment passed to the process."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("DINGMW_")}
    good = {
        **base,
        "DINGMW_APP_KEY": DEFAULT_APP_KEY,
        "DINGMW_APP_SECRET": APP_SECRET,
        "DINGMW_SECRET_KEY": SECRET_KEY,
    }
    command = [sys.executable, "-m", "dingmw", "check"]
    ok = subprocess.run(command, env=good, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "configuration OK" in ok.stdout
    assert_no_secret(ok.stdout, ok.stderr)

    bad = {k: v for k, v in good.items() if k != "DINGMW_APP_SECRET"}
    ko = subprocess.run(command, env=bad, capture_output=True, text=True, timeout=60)
    assert ko.returncode == 1
    assert "DINGMW_APP_SECRET" in ko.stderr
    assert "Traceback" not in ko.stderr
    assert_no_secret(ko.stdout, ko.stderr)


def live_env(monkeypatch: pytest.MonkeyPatch, fake_url: str, **extra: str) -> None:
    good_env(
        monkeypatch,
        DINGMW_APP_SECRET=DEFAULT_APP_SECRET,
        DINGMW_OAPI_URL=fake_url,
        DINGMW_API_URL=fake_url,
        DINGMW_LOGIN_URL=fake_url,
        DINGMW_HTTP_TIMEOUT="10",
        **extra,
    )


@pytest.mark.parametrize("enrich", ["none", "detail"])
@pytest.mark.parametrize(
    ("flow", "call"), [("oauth2", "oauth2/accessToken"), ("sns", "sns/gettoken")]
)
def test_check_live_against_the_fake(
    flow: str,
    call: str,
    enrich: str,
    fake_server: FakeServer,
    env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    live_env(env, fake_server.url, DINGMW_FLOW=flow, DINGMW_ENRICH=enrich)
    code, out, err = run_check(capsys, "--live")
    assert code == 0, err
    assert f"{call}: credentials accepted" in out
    corp_line = "\ngettoken: credentials accepted" in "\n" + out
    assert corp_line == (enrich == "detail"), out
    assert out.rstrip().endswith("live check OK")
    assert DEFAULT_APP_SECRET not in out + err
    assert_no_secret(out, err)


@pytest.mark.parametrize(
    ("flow", "extra", "call"),
    [
        pytest.param(
            "oauth2", {"DINGMW_APP_SECRET": APP_SECRET}, "oauth2/accessToken", id="oauth2"
        ),
        pytest.param("sns", {"DINGMW_APP_SECRET": APP_SECRET}, "sns/gettoken", id="sns"),
        pytest.param(
            "oauth2",
            {
                "DINGMW_ENRICH": "detail",
                "DINGMW_CORP_APP_KEY": DEFAULT_APP_KEY,
                "DINGMW_CORP_APP_SECRET": CORP_SECRET,
            },
            "gettoken",
            id="corp-app",
        ),
    ],
)
def test_check_live_wrong_credentials(
    flow: str,
    extra: dict[str, str],
    call: str,
    fake_server: FakeServer,
    env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    live_env(env, fake_server.url, DINGMW_FLOW=flow)
    for name, value in extra.items():
        env.setenv(name, value)
    code, out, err = run_check(capsys, "--live")
    assert code == 3  # the configuration is valid; DingTalk refused it
    assert "live check OK" not in out
    assert "Traceback" not in err
    assert_no_secret(out, err)
    assert DEFAULT_APP_SECRET not in out + err
    assert re.search(rf"(^|[\s:(]){re.escape(call)}\b", err), (
        f"the failing call is not named: {err}"
    )


def test_check_live_reports_every_failing_probe(
    fake_server: FakeServer, env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A wrong login app and a wrong corp app: one run names both calls."""
    live_env(
        env,
        fake_server.url,
        DINGMW_ENRICH="detail",
        DINGMW_CORP_APP_KEY=DEFAULT_APP_KEY,
        DINGMW_CORP_APP_SECRET=CORP_SECRET,
    )
    env.setenv("DINGMW_APP_SECRET", APP_SECRET)
    code, out, err = run_check(capsys, "--live")
    assert code == 3
    failures = [line for line in err.splitlines() if line.startswith("dingmw check --live: ")]
    assert len(failures) == 2, err
    assert "oauth2/accessToken" in failures[0]
    assert "(gettoken)" in failures[1]
    assert "store: memory:// answers" in out
    assert_no_secret(out, err)


def test_check_with_a_redis_url_and_no_redis_package(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The middleware would refuse to start: so does the check, before any --live."""
    good_env(env, DINGMW_STORE_URL=f"redis://:{REDIS_PASSWORD}@localhost:6379/0")
    env.delitem(sys.modules, "dingmw.stores.redis", raising=False)
    env.setitem(sys.modules, "redis", None)
    code, out, err = run_check(capsys)
    assert code == 1
    assert "DINGMW_STORE_URL=redis://... needs the redis package" in err
    assert "configuration OK" not in out
    assert_no_secret(out, err)


@pytest.mark.parametrize(
    "url", ["redis://localhost:six/0", "redis://localhost:6379/zero", "redis://[::1/0"]
)
def test_check_refuses_a_malformed_redis_url(
    url: str, env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    good_env(env, DINGMW_STORE_URL=url)
    code, _, err = run_check(capsys)
    assert code == 1
    assert "DINGMW_STORE_URL" in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_check_live_with_redis_down(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--live` pings the store: a Redis that is not there fails the check (status 3)."""
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    good_env(env, DINGMW_STORE_URL=f"redis://:{REDIS_PASSWORD}@127.0.0.1:{port}/0")
    env.setenv("DINGMW_API_URL", "http://127.0.0.1:9")  # nothing there either
    code, out, err = run_check(capsys, "--live")
    assert code == 3
    assert "live check OK" not in out
    assert f"store_unavailable: Redis PING unreachable at redis://127.0.0.1:{port}/0" in err
    assert_no_secret(out, err)


PRODUCTION = {
    "DINGMW_BASE_URL": "https://intra.example.com",
    "DINGMW_STORE_URL": f"redis://:{REDIS_PASSWORD}@redis.internal:6379/0",
    "DINGMW_ALLOWED_CORP_IDS": "dingcorp",
}
METRICS_TOKEN = "metrics-token-never-printed-0123"
HUB_SITE = {"DINGMW_FLOW": "hub", "DINGMW_HUB_URL": "https://sso.example.com"}


@pytest.fixture
def multiproc_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "prometheus"
    directory.mkdir()
    return directory


def test_check_deploy_is_quiet_for_a_production_setup(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    good_env(env, **PRODUCTION)
    code, out, err = run_check(capsys, "--deploy", "--workers", "4", "--strict")
    assert (code, err) == (0, "")
    assert "configuration OK, 0 deployment warning(s)" in out


@pytest.mark.parametrize(
    ("changes", "warning"),
    [
        ({"DINGMW_BASE_URL": "http://intra.example.com"}, "DINGMW_BASE_URL uses http"),
        ({"DINGMW_BASE_URL": None}, "DINGMW_BASE_URL is not set"),
        ({"DINGMW_COOKIE_SECURE": "false"}, "DINGMW_COOKIE_SECURE=false"),
        ({"DINGMW_STORE_URL": None}, "DINGMW_STORE_URL=memory:// with 4 workers"),
        ({"DINGMW_SECRET_KEY": "0123456789abcdef" * 2}, "DINGMW_SECRET_KEY: key 1 holds less"),
        ({"DINGMW_SECRET_KEY": "a" * 40}, "DINGMW_SECRET_KEY: key 1 holds less"),
        ({"DINGMW_SECRET_KEY": "a" * 200}, "DINGMW_SECRET_KEY: key 1 holds less"),
        ({"DINGMW_SECRET_KEY": "a" * 61 + "1234"}, "DINGMW_SECRET_KEY: key 1 holds less"),
        ({"DINGMW_SECRET_KEY": "ab" * 40}, "DINGMW_SECRET_KEY: key 1 holds less"),
        ({"DINGMW_SECRET_KEY": "0123456789abcdef" * 4}, "DINGMW_SECRET_KEY: key 1 holds less"),
        ({"DINGMW_ALLOWED_CORP_IDS": None}, "no allow-list"),
        (
            {"DINGMW_STORE_URL": "redis://redis.internal:6379/0"},
            "DINGMW_STORE_URL: Redis at redis.internal has no password",
        ),
        (
            {"DINGMW_STORE_URL": "redis://dingmw@10.0.0.5/0"},
            "DINGMW_STORE_URL: Redis at 10.0.0.5 has no password",
        ),
        (
            {"DINGMW_STORE_URL": "redis+sentinel://127.0.0.1:26379,s2.internal:26379/mymaster"},
            "DINGMW_STORE_URL: Redis at s2.internal has no password",
        ),
        (
            {"DINGMW_STORE_URL": "redis+cluster://[fd00::5]:7000"},
            "DINGMW_STORE_URL: Redis at [fd00::5] has no password",
        ),
        ({**HUB_SITE, "DINGMW_HUB_URL": "http://sso.example.com"}, "DINGMW_HUB_URL uses http"),
        ({"DINGMW_OAPI_URL": "http://127.0.0.1:8001"}, "DINGMW_OAPI_URL uses http"),
        ({"DINGMW_API_URL": "http://127.0.0.1:8001"}, "DINGMW_API_URL uses http"),
        ({"DINGMW_LOGIN_URL": "http://127.0.0.1:8001"}, "DINGMW_LOGIN_URL uses http"),
        ({"DINGMW_METRICS": "1"}, "DINGMW_METRICS=1 without DINGMW_METRICS_TOKEN"),
        (
            {
                "DINGMW_METRICS": "1",
                "DINGMW_METRICS_TOKEN": METRICS_TOKEN,
                "PROMETHEUS_MULTIPROC_DIR": "/no/such/dingmw-metrics",
            },
            "PROMETHEUS_MULTIPROC_DIR is not an existing directory",
        ),
    ],
)
def test_check_deploy_warnings(
    changes: dict[str, str | None],
    warning: str,
    env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    good_env(env, **PRODUCTION)
    for name, value in changes.items():
        if value is None:
            env.delenv(name)
        else:
            env.setenv(name, value)
    code, out, err = run_check(capsys, "--deploy", "--workers", "4")
    assert code == 0
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"dingmw check: warning: {warning}")
    assert "configuration OK, 1 deployment warning(s)" in out
    assert run_check(capsys, "--deploy", "--workers", "4", "--strict")[0] == 1
    assert_no_secret(out, err)


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"DINGMW_STORE_URL": "redis://localhost:6379/0"}, id="localhost"),
        pytest.param({"DINGMW_STORE_URL": "redis://127.0.0.2/0"}, id="127.0.0.2"),
        pytest.param({"DINGMW_STORE_URL": "redis://[::1]:6379/0"}, id="::1"),
        pytest.param({"DINGMW_STORE_URL": "rediss://redis.internal:6380/0"}, id="rediss"),
        pytest.param({"DINGMW_STORE_URL": "unix:///run/redis/redis.sock?db=0"}, id="unix"),
        pytest.param(
            {"DINGMW_STORE_URL": f"unix:///run/redis.sock?db=0&password={REDIS_PASSWORD}"},
            id="unix-password",
        ),
        pytest.param(
            {"DINGMW_STORE_URL": f"redis+cluster://:{REDIS_PASSWORD}@10.0.0.5:7000"},
            id="cluster-password",
        ),
        pytest.param({**HUB_SITE}, id="hub-https"),
        pytest.param(
            {**HUB_SITE, "DINGMW_OAPI_URL": "http://127.0.0.1:8001"},
            id="hub-site-uses-no-dingtalk-endpoint",
        ),
        pytest.param({"DINGMW_METRICS": "1", "DINGMW_METRICS_TOKEN": METRICS_TOKEN}, id="metrics"),
        pytest.param(
            {"DINGMW_METRICS": "1", "DINGMW_METRICS_TOKEN": METRICS_TOKEN, "multiproc": ""},
            id="metrics-multiproc",
        ),
        pytest.param({"PROMETHEUS_MULTIPROC_DIR": "/no/such/dir"}, id="multiproc-metrics-off"),
    ],
)
def test_check_deploy_accepts_safe_settings(
    changes: dict[str, str | None],
    multiproc_dir: Path,
    env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    good_env(env, **PRODUCTION)
    for name, value in changes.items():
        if name == "multiproc":
            env.setenv("PROMETHEUS_MULTIPROC_DIR", str(multiproc_dir))
        elif value is None:
            env.delenv(name)
        else:
            env.setenv(name, value)
    code, out, err = run_check(capsys, "--deploy", "--workers", "4", "--strict")
    assert (code, err) == (0, ""), err
    assert "configuration OK, 0 deployment warning(s)" in out
    assert_no_secret(out, err)


def test_check_deploy_warns_of_an_unwritable_multiproc_dir(
    multiproc_dir: Path, env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    good_env(env, **PRODUCTION, DINGMW_METRICS="1", DINGMW_METRICS_TOKEN=METRICS_TOKEN)
    env.setenv("PROMETHEUS_MULTIPROC_DIR", str(multiproc_dir))
    env.setattr(os, "access", lambda path, mode: False)  # as a user who may not write there
    code, out, err = run_check(capsys, "--deploy", "--workers", "4")
    assert code == 0
    assert "configuration OK, 1 deployment warning(s)" in out
    assert err == (
        "dingmw check: warning: PROMETHEUS_MULTIPROC_DIR is a directory this process cannot "
        "write to: with DINGMW_METRICS=1 no value is recorded; create it, empty and writable by "
        "every worker, before the server starts\n"
    )


@pytest.mark.parametrize(
    "make_key",
    [
        lambda: secrets.token_urlsafe(32),
        lambda: secrets.token_urlsafe(48),
        lambda: secrets.token_hex(32),
    ],
    ids=["token_urlsafe(32)", "token_urlsafe(48)", "token_hex(32)"],
)
def test_check_deploy_accepts_random_keys(
    make_key: Callable[[], str], env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Keys from `secrets` never get the weak-key warning (the estimate, over many keys)."""
    good_env(env, **PRODUCTION)
    keys = [make_key() for _ in range(20)]
    env.setenv("DINGMW_SECRET_KEY", ",".join(keys))
    code, out, err = run_check(capsys, "--deploy", "--workers", "4", "--strict")
    assert (code, err) == (0, "")
    assert "configuration OK, 0 deployment warning(s)" in out
    assert all(key_strength(make_key()) >= MIN_SECRET_KEY_LENGTH for _ in range(2000))


def test_check_deploy_reads_web_concurrency(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    good_env(env, **{**PRODUCTION, "DINGMW_STORE_URL": "memory://"})
    env.setenv("WEB_CONCURRENCY", "3")
    _, _, err = run_check(capsys, "--deploy")
    assert "memory:// with 3 workers" in err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from dingmw import __version__

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"dingmw {__version__}\n"


@pytest.mark.parametrize(
    ("command", "port"), [("demo", 8000), ("fake-dingtalk", 8001), ("hub", 8080)]
)
def test_host_and_port_are_explained_with_their_defaults(
    command: str, port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "--host HOST address to listen on (default: 127.0.0.1)" in out
    assert f"(default: {port})" in out


@pytest.mark.parametrize("command", ["demo", "hub", "fake-dingtalk"])
def test_a_busy_port_is_one_line(
    command: str, env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    if command == "hub":
        good_env(
            env,
            DINGMW_HUB_CLIENTS='[{"client_id": "wiki", "client_secret": "wiki-secret-0123456789",'
            ' "redirect_urls": ["https://wiki.example.com/dingtalk/callback"]}]',
        )
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main([command, "--port", str(port)])
    err = capsys.readouterr().err
    assert code == 1
    assert err == (
        f"dingmw {command}: 127.0.0.1:{port} is already in use; choose another port with "
        f"--port {port + 1}\n"
    )


@pytest.mark.parametrize("flag", [[], ["--no-access-log"]], ids=["default", "no-access-log"])
def test_hub_access_log_is_on_unless_turned_off(flag: list[str], tmp_path: Path) -> None:
    """`dingmw hub` logs each request (codes masked) unless `--no-access-log` (when the proxy in
    front logs them already: the log line costs about a fifth of a token grant's CPU)."""
    port = free_port()
    clients = (
        '[{"client_id": "wiki", "client_secret": "wiki-secret-0123456789",'
        ' "redirect_urls": ["https://wiki.example.com/dingtalk/callback"]}]'
    )
    environ = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DINGMW_")},
        "DINGMW_APP_KEY": DEFAULT_APP_KEY,
        "DINGMW_APP_SECRET": APP_SECRET,
        "DINGMW_SECRET_KEY": SECRET_KEY,
        "DINGMW_HUB_CLIENTS": clients,
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp_path / "hub.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "dingmw", "hub", "--port", str(port), *flag],
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_answering(
                f"http://127.0.0.1:{port}/healthz", process, 30, lambda: log.read_text("utf-8")
            )
            answer = httpx.get(f"http://127.0.0.1:{port}/dingtalk/callback?code=SECRETCODE&state=s")
            assert answer.status_code == 400
        finally:
            stop_process(process, 10)
    text = log.read_text("utf-8")
    assert "SECRETCODE" not in text
    if flag:
        assert "GET /healthz" not in text, text
        assert "/dingtalk/callback" not in text, text
    else:
        assert "GET /healthz" in text, text
        assert "/dingtalk/callback?code=***" in text, text
