"""Prometheus metrics at /dingtalk/metrics (`DINGMW_METRICS=1`), through both adapters: what a
login, a failure, a DingTalk error and a logout count, the bearer token, bounded labels, and
metrics that fail (logged, never a failed request)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from dingmw import metrics
from dingmw.testing import ZHANGSAN, FakeDingTalk

from .support import HTML, ClientFactory, login, make_settings, start_login

TOKEN = "metrics-token-0123456789"


def samples(
    client: httpx.Client, **headers: str
) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = client.get("/dingtalk/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    assert response.headers["cache-control"] == "no-store"
    found = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(
    found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def metered(client_factory: ClientFactory) -> httpx.Client:
    return client_factory(make_settings("oauth2", metrics=True))


def test_metrics_are_off_by_default(client_factory: ClientFactory) -> None:
    assert client_factory().get("/dingtalk/metrics").status_code == 404


def test_a_login_is_counted(metered: httpx.Client, fake: FakeDingTalk) -> None:
    before = samples(metered)
    assert login(metered, fake, ZHANGSAN.unionid).status_code == 302
    after = samples(metered)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("dingmw_logins_started_total", flow="oauth2") == 1
    assert delta("dingmw_logins_completed_total", flow="oauth2") == 1
    for call in ("oauth2/userAccessToken", "contact/users/me"):
        assert delta("dingmw_dingtalk_request_duration_seconds_count", call=call, outcome="ok") == 1
    text = metered.get("/dingtalk/metrics").text
    for personal in (ZHANGSAN.unionid, ZHANGSAN.nick):
        assert personal not in text  # no person in any label


def test_failures_are_counted_by_reason(metered: httpx.Client, fake: FakeDingTalk) -> None:
    before = samples(metered)
    bad = metered.get(
        "/dingtalk/callback", params={"authCode": "x", "state": "forged"}, headers=HTML
    )
    assert bad.status_code == 400
    fake.inject("/v1.0/oauth2/userAccessToken", status=500)
    config = start_login(metered)
    failed = metered.get(fake.scan(config["authorize_url"], ZHANGSAN.unionid), headers=HTML)
    assert failed.status_code == 502
    after = samples(metered)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("dingmw_logins_failed_total", flow="oauth2", reason="state_unknown") == 1
    assert delta("dingmw_logins_failed_total", flow="oauth2", reason="upstream") == 1
    assert (
        delta(
            "dingmw_dingtalk_request_duration_seconds_count",
            call="oauth2/userAccessToken",
            outcome="http_5xx",
        )
        == 1
    )


def test_dingtalk_error_codes_are_counted(
    client_factory: ClientFactory, fake: FakeDingTalk
) -> None:
    """oapi answers an error with HTTP 200 (the duration histogram says `ok`): its errcode is
    counted apart; so is an api.dingtalk.com error's `code`."""
    client = client_factory(make_settings("sns", metrics=True))
    before = samples(client)
    fake.inject("/sns/gettoken", errcode=40089, message="invalid appkey")
    config = start_login(client)
    assert (
        client.get(fake.scan(config["authorize_url"], ZHANGSAN.unionid), headers=HTML).status_code
        == 502
    )
    oauth2 = client_factory(make_settings("oauth2", metrics=True))
    fake.inject("/v1.0/oauth2/userAccessToken", status=400, code="invalidAuthCode")
    config = start_login(oauth2)
    assert (
        oauth2.get(fake.scan(config["authorize_url"], ZHANGSAN.unionid), headers=HTML).status_code
        == 502
    )
    after = samples(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("dingmw_dingtalk_errors_total", call="sns/gettoken", code="40089") == 1
    assert (
        delta("dingmw_dingtalk_errors_total", call="oauth2/userAccessToken", code="invalidAuthCode")
        == 1
    )
    assert (
        delta("dingmw_dingtalk_request_duration_seconds_count", call="sns/gettoken", outcome="ok")
        == 1
    )


def test_app_token_fetches_and_logouts(client_factory: ClientFactory, fake: FakeDingTalk) -> None:
    client = client_factory(make_settings("sns", metrics=True))
    before = samples(client)
    assert login(client, fake, ZHANGSAN.unionid).status_code == 302
    assert (
        client.post("/dingtalk/logout", headers={"origin": "http://testserver"}).status_code == 302
    )
    after = samples(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("dingmw_app_token_fetches_total", call="sns/gettoken", outcome="ok") == 1
    assert delta("dingmw_sessions_revoked_total", scope="session") == 1


def test_bearer_token(client_factory: ClientFactory) -> None:
    client = client_factory(make_settings(metrics=True, metrics_token=TOKEN))
    for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": TOKEN}):
        refused = client.get("/dingtalk/metrics", headers=headers)
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert TOKEN not in refused.text
    assert samples(client, authorization=f"Bearer {TOKEN}")


@pytest.mark.parametrize(
    "given",
    [
        f"bearer {TOKEN}",
        f"BEARER {TOKEN}",
        f"BeArEr {TOKEN}",
        f"Bearer  {TOKEN}",
        f"Bearer\t{TOKEN}",
        f"  Bearer {TOKEN}  ",
    ],
)
def test_bearer_scheme_in_any_case_and_spacing(client_factory: ClientFactory, given: str) -> None:
    """RFC 7235 §2.1: the auth scheme is case-insensitive; extra whitespace is not a token."""
    client = client_factory(make_settings(metrics=True, metrics_token=TOKEN))
    assert samples(client, authorization=given)


@pytest.mark.parametrize(
    "given",
    [
        "",
        "bearer",
        "bearer ",
        f"Basic {TOKEN}",
        f"Bearer{TOKEN}",
        f"bearer {TOKEN}x",
        f"bearer {TOKEN[:-1]}",
        f"bearer {TOKEN} {TOKEN}",
        f"Token {TOKEN}",
    ],
)
def test_bearer_wrong_token_is_401(client_factory: ClientFactory, given: str) -> None:
    client = client_factory(make_settings(metrics=True, metrics_token=TOKEN))
    refused = client.get("/dingtalk/metrics", headers={"authorization": given})
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == 'Bearer realm="dingmw metrics"'


def test_labels_stay_bounded() -> None:
    metrics.enable()
    for i in range(metrics.MAX_LABEL_VALUES + 10):
        metrics.login_failed("oauth2", f"made-up-reason-{i}")
    body, _ = metrics.exposition()
    reasons = {
        sample.labels["reason"]
        for family in text_string_to_metric_families(body.decode())
        if family.name == "dingmw_logins_failed"
        for sample in family.samples
    }
    assert len(reasons) <= metrics.MAX_LABEL_VALUES + 1
    assert "other" in reasons


def test_hub_grants_are_counted(fake: FakeDingTalk) -> None:
    from dingmw.hub import create_app

    from .support import TestClient
    from .test_hub import CLIENTS, HUB, authorize, code_of, redeem

    hub = create_app(
        make_settings("oauth2", hub_clients=CLIENTS, metrics=True), transport=fake.transport()
    )
    with TestClient(hub, base_url=HUB, follow_redirects=False) as browser:
        before = samples(browser)
        code, state = code_of(authorize(browser, fake, ZHANGSAN.unionid))
        assert redeem(browser, f"code={code}&state={state}").status_code == 200
        assert redeem(browser, f"code={code}&state={state}").status_code == 400  # spent
        assert redeem(browser, "grant_type=password&username=x").status_code == 400
        after = samples(browser)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    grants = "dingmw_hub_grants_total"
    assert delta(grants, grant_type="authorization_code", result="issued") == 1
    assert delta(grants, grant_type="authorization_code", result="invalid_grant") == 1
    assert delta(grants, grant_type="other", result="unsupported_grant_type") == 1
    assert delta("dingmw_logins_completed_total", flow="oauth2") == 1


# --- metrics that fail ------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent

BROKEN_DIR_SCRIPT = textwrap.dedent(
    """
    import logging, sys
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(message)s")
    from dingmw.testing import ZHANGSAN, FakeDingTalk
    from tests.support import HTML, build_client, make_settings, page_config
    fake = FakeDingTalk()
    for adapter in ("asgi", "wsgi"):
        client = build_client(adapter, make_settings("oauth2", metrics=True), fake)
        page = client.get("/dingtalk/login", params={"next": "/private"}, headers=HTML)
        print(adapter, "login", page.status_code)
        location = fake.scan(page_config(page)["authorize_url"], ZHANGSAN.unionid)
        print(adapter, "callback", client.get(location, headers=HTML).status_code)
        scrape = client.get("/dingtalk/metrics")
        print(adapter, "metrics", scrape.status_code, scrape.text)
    """
)


def test_a_missing_multiprocess_dir_never_breaks_a_login(tmp_path: Path) -> None:
    """`PROMETHEUS_MULTIPROC_DIR` names no directory (prometheus_client reads it when it is
    imported, hence a process of its own): logins go on, one warning names the problem, and
    a scrape is a 503 that says why."""
    missing = tmp_path / "no-such-dir"
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(missing)}
    done = subprocess.run(
        [sys.executable, "-c", BROKEN_DIR_SCRIPT],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    unavailable = (
        '503 {"error":"metrics_unavailable",'
        '"detail":"PROMETHEUS_MULTIPROC_DIR is not an existing directory"}'
    )
    for adapter in ("asgi", "wsgi"):
        assert f"{adapter} login 200" in done.stdout, done.stdout + done.stderr
        assert f"{adapter} callback 302" in done.stdout, done.stdout + done.stderr
        assert f"{adapter} metrics {unavailable}" in done.stdout, done.stdout
    warnings = [line for line in done.stderr.splitlines() if "metrics not recorded" in line]
    assert len(warnings) == 1, done.stderr  # rate-limited: once, not at every login
    assert "FileNotFoundError" in warnings[0]
    assert str(missing) in warnings[0]
    assert "Traceback" not in done.stderr


class Broken:
    """Metrics whose every series fails, as a full or missing directory makes them."""

    def bounded(self, label: str, value: str) -> str:
        return value

    def __getattr__(self, name: str) -> NoReturn:
        raise OSError(28, "No space left on device")


def test_a_failing_series_is_logged_and_the_call_goes_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(metrics, "_metrics", Broken())
    monkeypatch.setattr(metrics, "warn", metrics._Warner())
    calls: list[tuple[Any, ...]] = [
        (metrics.login_started, "oauth2"),
        (metrics.login_completed, "oauth2"),
        (metrics.login_failed, "oauth2", "upstream"),
        (metrics.app_token_fetched, "gettoken", True),
        (metrics.hub_grant, "authorization_code", "issued"),
        (metrics.session_revoked, "session"),
        (metrics.dingtalk_observed, "gettoken", "ok", 0.1),
        (metrics.dingtalk_refused, "gettoken", "40089"),
    ]
    with caplog.at_level(logging.WARNING, logger="dingmw"):
        for fn, *args in calls:
            fn(*args)  # never raises
        with metrics.store_operation("GET"):
            pass
        with pytest.raises(KeyError), metrics.store_operation("SET"):
            raise KeyError("the store's own error")  # still the caller's
    assert len(caplog.records) == 1
    assert caplog.records[0].levelno == logging.WARNING
    assert caplog.records[0].getMessage() == (
        "dingmw: metrics not recorded (login_started): OSError: [Errno 28] No space left on "
        "device; requests go on without them"
    )


def test_failing_metrics_are_warned_about_at_most_every_few_minutes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [1000.0]
    warn = metrics._Warner(clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="dingmw"):
        for _ in range(5):
            warn("login_started", OSError("disk full"))
        now[0] += metrics.WARN_EVERY
        warn("login_started", OSError("disk full"))
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2, messages
    assert messages[1].endswith("(4 more failed since the last warning)")


def test_an_unreadable_multiprocess_dir_is_a_503(
    client_factory: ClientFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "gone"))
    monkeypatch.setattr(metrics, "warn", metrics._Warner())
    client = client_factory(make_settings(metrics=True, metrics_token=TOKEN))
    assert client.get("/dingtalk/metrics").status_code == 401  # the token first
    response = client.get("/dingtalk/metrics", headers={"authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 503
    assert response.json() == {
        "error": "metrics_unavailable",
        "detail": "PROMETHEUS_MULTIPROC_DIR is not an existing directory",
    }
    assert str(tmp_path) not in response.text
