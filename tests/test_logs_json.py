"""`DINGMW_LOG_FORMAT=json`: one JSON line per login outcome and per failed DingTalk call, with
the request id, the flow, the call and the latency, and never a secret."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dingmw import logs
from dingmw.testing import DEFAULT_APP_SECRET, ZHANGSAN, FakeDingTalk

from .support import HTML, ClientFactory, make_settings, start_login


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """The `dingmw` logger in JSON mode, writing to a buffer; put back as it was afterwards."""
    logger = logging.getLogger("dingmw")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    buffer = io.StringIO()
    handler = logs.use_json()
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buffer)
    try:
        yield buffer
    finally:
        logger.handlers[:] = saved[0]
        logger.setLevel(saved[1])
        logger.propagate = saved[2]


def records(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def callback(client: httpx.Client, fake: FakeDingTalk, request_id: str) -> httpx.Response:
    config = start_login(client)
    location = fake.scan(config["authorize_url"], ZHANGSAN.unionid)
    return client.get(location, headers={**HTML, "x-request-id": request_id})


def assert_no_secret(buffer: io.StringIO, client: httpx.Client) -> None:
    text = buffer.getvalue()
    assert DEFAULT_APP_SECRET not in text
    for cookie in client.cookies.jar:
        assert not cookie.value or cookie.value not in text


def test_a_login_is_one_json_line(
    client_factory: ClientFactory, fake: FakeDingTalk, json_lines: io.StringIO
) -> None:
    client = client_factory(make_settings(log_format="json"))
    assert callback(client, fake, "req-42").status_code == 302
    lines = [r for r in records(json_lines) if r.get("event") == "login"]
    assert len(lines) == 1, json_lines.getvalue()
    line = lines[0]
    assert line["outcome"] == "ok"
    assert line["flow"] == "oauth2"
    assert line["request_id"] == "req-42"
    assert line["level"] == "info"
    assert isinstance(line["latency_ms"], int | float)
    assert line["message"].startswith("dingmw: login unionid=")
    assert_no_secret(json_lines, client)


def test_a_dingtalk_failure_is_logged_with_its_call_and_latency(
    client_factory: ClientFactory, fake: FakeDingTalk, json_lines: io.StringIO
) -> None:
    client = client_factory(make_settings(log_format="json"))
    fake.inject("/v1.0/oauth2/userAccessToken", status=503)
    assert callback(client, fake, "req-7").status_code == 502
    found = records(json_lines)
    call = next(r for r in found if r.get("event") == "dingtalk_call")
    assert call["call"] == "oauth2/userAccessToken"
    assert call["outcome"] == "http_5xx"
    assert call["level"] == "warning"
    assert isinstance(call["latency_ms"], int | float)
    login = next(r for r in found if r.get("event") == "login")
    assert (login["outcome"], login["reason"], login["status"]) == ("failed", "upstream", 502)
    assert login["call"] == "oauth2/userAccessToken"
    assert {r.get("request_id") for r in found if r.get("event")} == {"req-7"}
    assert_no_secret(json_lines, client)


def test_a_request_id_that_is_not_a_token_is_replaced(
    client_factory: ClientFactory, fake: FakeDingTalk, json_lines: io.StringIO
) -> None:
    client = client_factory(make_settings(log_format="json"))
    callback(client, fake, 'x" injected=1 ' + "y" * 100)
    line = next(r for r in records(json_lines) if r.get("event") == "login")
    assert len(line["request_id"]) == 16
    assert "injected" not in json_lines.getvalue()


def test_secret_query_parameters_are_masked(json_lines: io.StringIO) -> None:
    logging.getLogger("dingmw").warning(
        "calling %s", "https://oapi.dingtalk.com/gettoken?appkey=k&appsecret=TOPSECRET&code=C0DE"
    )
    (line,) = records(json_lines)
    assert "TOPSECRET" not in line["message"]
    assert "C0DE" not in line["message"]
    assert "appsecret=***" in line["message"]
