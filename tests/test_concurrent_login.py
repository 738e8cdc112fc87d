"""A login with enrichment fetches the corp app token while the person's own calls run.

Through both adapters and every flow: the fake DingTalk answers `gettoken`
and the flow's first call only once both have arrived, so a login whose
driver made them one after the other would fail (after `WAIT`), not pass
slowly. The dependent lookups still come in order after the person's calls.
"""

from __future__ import annotations

import asyncio
import threading

import httpx
import pytest

from dingmw import ASGIMiddleware, Settings, WSGIMiddleware
from dingmw.testing import DEFAULT_CORP_ID, LISI, ZHANGSAN, FakeDingTalk

from .support import (
    ADAPTERS,
    FLOWS,
    TestClient,
    asgi_app,
    build_client,
    login,
    make_settings,
    wsgi_app,
)

WAIT = 10.0  # seconds: only a safety net so a sequential login fails instead of hanging

# The first server call of each flow, which needs nothing the corp token gives.
FIRST_CALL = {
    "oauth2": "/v1.0/oauth2/userAccessToken",
    "sns": "/sns/gettoken",
    "bycode": "/sns/getuserinfo_bycode",
}


class Rendezvous(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Wraps the fake's transport: two paths are answered only once both have arrived."""

    def __init__(self, fake: FakeDingTalk, paths: tuple[str, str]) -> None:
        self.inner = fake.transport()
        self.paths = set(paths)
        self.barrier = threading.Barrier(2, timeout=WAIT)
        self.arrived: set[str] = set()
        self.both_here: asyncio.Event | None = None
        self.log: list[str] = []
        self.lock = threading.Lock()

    def note(self, event: str) -> None:
        with self.lock:
            self.log.append(event)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.note(f"start {path}")
        if path in self.paths:
            self.paths.discard(path)
            self.barrier.wait()
        response = self.inner.handle_request(request)
        self.note(f"end {path}")
        return response

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.note(f"start {path}")
        if path in self.paths:
            self.paths.discard(path)
            self.arrived.add(path)
            if self.both_here is None:
                self.both_here = asyncio.Event()
            if len(self.arrived) == 2:
                self.both_here.set()
            await asyncio.wait_for(self.both_here.wait(), WAIT)
        response = await self.inner.handle_async_request(request)
        self.note(f"end {path}")
        return response


@pytest.mark.parametrize("adapter", ADAPTERS)
@pytest.mark.parametrize("flow", FLOWS)
def test_corp_token_is_fetched_while_the_flow_calls_dingtalk(adapter: str, flow: str) -> None:
    fake = FakeDingTalk()
    meeting = Rendezvous(fake, ("/gettoken", FIRST_CALL[flow]))
    settings = make_settings(flow, enrich="detail", corp_id=DEFAULT_CORP_ID)
    client = client_with_transport(adapter, settings, meeting)
    response = login(client, fake, ZHANGSAN.unionid)
    assert response.status_code == 302, response.text
    me = client.get("/dingtalk/me").json()
    assert (me["userid"], me["dept_ids"]) == ("zhangsan", [1, 100])
    log = meeting.log
    # Both were in flight before either ended.
    assert set(log[:2]) == {"start /gettoken", f"start {FIRST_CALL[flow]}"}, log
    # The lookups depend on the person's identity and on the token: they come after both.
    lookup = log.index("start /topapi/user/getbyunionid")
    assert lookup > log.index("end /gettoken")
    assert lookup > max(i for i, e in enumerate(log) if e.startswith("end ") and "topapi" not in e)
    assert log.index("start /topapi/v2/user/get") > log.index("end /topapi/user/getbyunionid")


def client_with_transport(adapter: str, settings: Settings, transport: Rendezvous) -> httpx.Client:
    if adapter == "asgi":
        app = ASGIMiddleware(asgi_app(), settings, transport=transport)
        return TestClient(app, base_url="http://testserver", follow_redirects=False)
    flask = wsgi_app()
    flask.wsgi_app = WSGIMiddleware(  # type: ignore[method-assign]  # the documented way
        flask.wsgi_app, settings, transport=transport
    )
    return httpx.Client(
        transport=httpx.WSGITransport(app=flask),
        base_url="http://testserver",
        follow_redirects=False,
    )


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_a_warm_corp_token_is_read_beside_the_flow_and_fetched_once(adapter: str) -> None:
    fake = FakeDingTalk()
    client = build_client(adapter, make_settings("oauth2", enrich="detail"), fake)
    for person in (ZHANGSAN, LISI, ZHANGSAN):
        client.cookies.clear()
        assert login(client, fake, person.unionid).status_code == 302
    assert fake.calls["/gettoken"] == 1
    assert fake.calls["/topapi/v2/user/get"] == 3


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_the_persons_failure_is_reported_even_when_the_corp_token_fails_too(
    adapter: str,
) -> None:
    fake = FakeDingTalk()
    fake.inject("/v1.0/oauth2/userAccessToken", status=400, code="invalidParameter.authCode")
    fake.inject("/gettoken", errcode=40096, message="不合法的appKey或appSecret")
    client = build_client(adapter, make_settings("oauth2", enrich="detail"), fake)
    response = login(client, fake, ZHANGSAN.unionid)
    assert response.status_code == 502
    assert "oauth2/userAccessToken" in response.text
