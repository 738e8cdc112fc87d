"""examples/hub_two_sites.py, run as a person would: site A logs in through the hub with one
scan in the fake DingTalk, then site B logs in through the hub's session with no scan."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from dingmw.testing import ZHANGSAN

from .conftest import ContextFactory
from .processes import stop_process
from .test_browser_hub import sign_in_at_dingtalk

pytestmark = pytest.mark.browser

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "hub_two_sites.py"
SITES = re.compile(r"Open site A: (http://\S+)/ +then site B: (http://\S+)/")


@pytest.fixture
def example() -> Iterator[tuple[str, str]]:
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLE)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    try:
        match = None
        deadline = time.monotonic() + 30
        for line in proc.stdout:  # the example prints its URLs once everything listens
            match = SITES.search(line)
            if match or time.monotonic() > deadline:
                break
        if match is None:
            pytest.fail(f"the example printed no URLs: {proc.stderr.read()}")
        yield match.group(1), match.group(2)
    finally:
        stop_process(proc, 15, signal.SIGINT)
        proc.stdout.close()
        proc.stderr.close()


def test_hub_example_logs_into_two_sites_with_one_scan(
    example: tuple[str, str], context_factory: ContextFactory
) -> None:
    site_a, site_b = example
    page = context_factory().new_page()
    page.goto(site_a + "/")
    # site A → the hub → DingTalk's own login page (the hub's default), where the person signs in
    page.wait_for_url(lambda url: "/oauth2/auth?" in url and not url.startswith(site_a))
    sign_in_at_dingtalk(page, ZHANGSAN.unionid)
    page.wait_for_url(site_a + "/")
    expect(page.locator("#greeting")).to_have_text(f"Hello, {ZHANGSAN.name}")
    page.goto(site_b + "/")
    page.wait_for_url(site_b + "/")
    expect(page.locator("#greeting")).to_have_text(f"Hello, {ZHANGSAN.name}")
