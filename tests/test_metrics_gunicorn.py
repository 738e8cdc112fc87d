"""Prometheus metrics under gunicorn with two workers (prometheus_client's multiprocess mode):
one scrape of /dingtalk/metrics counts the logins done on both workers."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from dingmw.testing import DEFAULT_APP_KEY, DEFAULT_APP_SECRET, ZHANGSAN

from .conftest import FakeServer
from .processes import stop_process, wait_answering
from .redis_server import free_port
from .support import SECRET_KEY, login

ROOT = Path(__file__).resolve().parent.parent
DEADLINE = 60.0


@pytest.fixture
def gunicorn(fake_server: FakeServer, tmp_path: Path) -> Iterator[str]:
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DINGMW_")}
    env.update(
        {
            "DINGMW_APP_KEY": DEFAULT_APP_KEY,
            "DINGMW_APP_SECRET": DEFAULT_APP_SECRET,
            "DINGMW_SECRET_KEY": SECRET_KEY,
            "DINGMW_OAPI_URL": fake_server.url,
            "DINGMW_API_URL": fake_server.url,
            "DINGMW_LOGIN_URL": fake_server.url,
            "DINGMW_PUBLIC_PATHS": "/health",
            "DINGMW_METRICS": "1",
            "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
        }
    )
    log = (tmp_path / "gunicorn.log").open("wb")
    command = [
        sys.executable, "-m", "gunicorn", "tests.metrics_app:app",
        "--workers", "2", "--bind", f"127.0.0.1:{port}",
    ]  # fmt: skip
    proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_answering(f"{url}/health", proc, DEADLINE, (tmp_path / "gunicorn.log").read_text)
        yield url
    finally:
        stop_process(proc, 15)
        log.close()


def completed_logins(text: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "dingmw_logins_completed_total"
    )


def test_one_scrape_counts_the_logins_of_both_workers(
    gunicorn: str, fake_server: FakeServer
) -> None:
    workers: set[str] = set()
    done: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def browse() -> None:
        try:
            while True:
                with lock:
                    if len(workers) >= 2 and len(done) >= 6:
                        return
                with httpx.Client(base_url=gunicorn, follow_redirects=False) as browser:
                    response = login(browser, fake_server.fake, ZHANGSAN.unionid)
                assert response.status_code == 302, response.text
                with lock:
                    done.append(1)
                    workers.add(response.headers["x-worker-pid"])  # who finished it
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=browse) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE)
    assert not errors, errors
    assert len(workers) == 2, "the logins did not reach both workers"

    scrape = httpx.get(f"{gunicorn}/dingtalk/metrics", timeout=10)
    assert scrape.status_code == 200
    assert completed_logins(scrape.text) == len(done)
