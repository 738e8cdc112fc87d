"""`/dingtalk/healthz` and `/dingtalk/readyz` on the middleware, through both adapters."""

from __future__ import annotations

import pytest

from .support import HTML, ClientFactory, make_settings


@pytest.mark.parametrize("route", ["/dingtalk/healthz", "/dingtalk/readyz"])
@pytest.mark.parametrize("accept", [HTML, {"accept": "*/*"}])
def test_probes_answer_without_a_login(
    client_factory: ClientFactory, route: str, accept: dict[str, str]
) -> None:
    client = client_factory()
    response = client.get(route, headers=accept)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ok"
    assert response.headers["cache-control"] == "no-store"
    assert "set-cookie" not in response.headers
    head = client.head(route)
    assert head.status_code == 200
    assert head.content == b""


def test_readyz_names_the_store(client_factory: ClientFactory) -> None:
    assert client_factory().get("/dingtalk/readyz").json() == {"status": "ok", "store": "ok"}


@pytest.mark.parametrize("route", ["/dingtalk/healthz", "/dingtalk/readyz"])
def test_probes_take_no_other_method(client_factory: ClientFactory, route: str) -> None:
    response = client_factory().post(route)
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"


def test_probes_follow_the_prefix(client_factory: ClientFactory) -> None:
    client = client_factory(make_settings(path_prefix="/sso"))
    assert client.get("/sso/healthz").status_code == 200
    assert client.get("/sso/readyz").status_code == 200
    assert client.get("/dingtalk/healthz").status_code == 401  # the app's path, protected
