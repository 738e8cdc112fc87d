"""Prometheus metrics at /dingtalk/metrics (`DINGMW_METRICS=1`), through both adapters: what a
login, a failure, a DingTalk error and a logout count, the bearer token, bounded labels."""

from __future__ import annotations

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
