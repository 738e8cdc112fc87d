"""`Identity`, `get_identity` on every carrier, and Starlette's `request.user` (`DingTalkUser`)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from starlette.authentication import BaseUser
from starlette.requests import Request as StarletteRequest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request as WerkzeugRequest

from dingmw import Identity, get_identity
from dingmw.identity import IDENTITY_KEY
from dingmw.starlette_user import DingTalkUser

from .support import FULL_IDENTITY as FULL


def test_contract_fields() -> None:
    names = [f.name for f in dataclasses.fields(Identity)]
    assert names[0] == "unionid"
    assert set(names) == {
        "unionid", "openid", "nick", "userid", "name", "email", "mobile", "avatar_url",
        "corp_id", "title", "job_number", "dept_ids", "flow",
    }  # fmt: skip


def test_minimal_identity_defaults() -> None:
    identity = Identity(unionid="u")
    assert identity.openid is None
    assert identity.userid is None
    assert identity.dept_ids == ()
    assert identity.flow == ""


def test_frozen_and_keyword_only() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        FULL.unionid = "other"  # type: ignore[misc]  # the point of the test
    with pytest.raises(TypeError):
        Identity("u")  # type: ignore[call-arg]  # positional arguments are refused


def test_hashable_and_equal_by_value() -> None:
    assert {FULL, dataclasses.replace(FULL)} == {FULL}


@pytest.mark.parametrize("identity", [FULL, Identity(unionid="only")])
def test_to_dict_from_dict_round_trip(identity: Identity) -> None:
    data = identity.to_dict()
    assert Identity.from_dict(data) == identity
    # JSON-ready, with dept_ids as a list.
    assert Identity.from_dict(json.loads(json.dumps(data))) == identity


def test_to_dict_has_every_field() -> None:
    data = FULL.to_dict()
    assert data["unionid"] == "u-1"
    assert data["dept_ids"] == [1, 2]
    assert data["flow"] == "oauth2"
    assert set(data) == {f.name for f in dataclasses.fields(Identity)}


def test_from_dict_ignores_unknown_keys() -> None:
    assert Identity.from_dict({"unionid": "u", "future_field": 1}) == Identity(unionid="u")


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({}, id="no-unionid"),
        pytest.param({"unionid": ""}, id="empty-unionid"),
        pytest.param({"unionid": 5}, id="unionid-number"),
        pytest.param({"unionid": "u", "email": 5}, id="email-number"),
        pytest.param({"unionid": "u", "dept_ids": "1,2"}, id="dept-ids-string"),
        pytest.param({"unionid": "u", "dept_ids": [1, "2"]}, id="dept-id-string"),
        pytest.param({"unionid": "u", "dept_ids": [True]}, id="dept-id-bool"),
        pytest.param({"unionid": "u", "flow": 1}, id="flow-number"),
    ],
)
def test_from_dict_rejects_bad_types(data: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"unionid|identity field"):
        Identity.from_dict(data)


@pytest.mark.parametrize(
    ("identity", "display", "remote"),
    [
        (FULL, "张三", "zhangsan"),
        (Identity(unionid="u", nick="nick"), "nick", "u"),
        (Identity(unionid="u"), "u", "u"),
    ],
)
def test_display_name_and_remote_user(identity: Identity, display: str, remote: str) -> None:
    assert identity.display_name == display
    assert identity.remote_user == remote


# get_identity on every carrier ----------------------------------------------------


def asgi_scope(identity: Identity | None) -> dict[str, Any]:
    scope: dict[str, Any] = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "raw_path": b"/",
        "root_path": "",
        "scheme": "http",
        "query_string": b"",
        "headers": [],
        "server": ("testserver", 80),
    }
    if identity is not None:
        scope[IDENTITY_KEY] = identity
    return scope


def wsgi_environ(identity: Identity | None) -> dict[str, Any]:
    environ: dict[str, Any] = EnvironBuilder(path="/").get_environ()
    if identity is not None:
        environ[IDENTITY_KEY] = identity
    return environ


def test_identity_key_is_the_contracts() -> None:
    assert IDENTITY_KEY == "dingtalk.identity"


@pytest.mark.parametrize("identity", [FULL, None])
def test_get_identity_from_an_asgi_scope(identity: Identity | None) -> None:
    assert get_identity(asgi_scope(identity)) == identity


@pytest.mark.parametrize("identity", [FULL, None])
def test_get_identity_from_a_wsgi_environ(identity: Identity | None) -> None:
    assert get_identity(wsgi_environ(identity)) == identity


@pytest.mark.parametrize("identity", [FULL, None])
def test_get_identity_from_a_starlette_request(identity: Identity | None) -> None:
    assert get_identity(StarletteRequest(asgi_scope(identity))) == identity


@pytest.mark.parametrize("identity", [FULL, None])
def test_get_identity_from_a_werkzeug_request(identity: Identity | None) -> None:
    assert get_identity(WerkzeugRequest(wsgi_environ(identity))) == identity


def test_get_identity_ignores_a_foreign_value_under_the_key() -> None:
    assert get_identity({IDENTITY_KEY: {"unionid": "forged"}}) is None


@pytest.mark.parametrize("carrier", [None, "scope", 42, object()])
def test_get_identity_refuses_other_objects(carrier: object) -> None:
    with pytest.raises(TypeError):
        get_identity(carrier)


# DingTalkUser: Starlette's request.user ----------------------------------------------


def test_dingtalk_user_is_a_starlette_user() -> None:
    user = DingTalkUser(FULL)
    assert isinstance(user, BaseUser)
    assert user.is_authenticated is True
    assert user.display_name == "张三"
    assert user.identity == "u-1"
    assert user.dingtalk is FULL


def test_dingtalk_user_passes_identity_fields_through() -> None:
    user = DingTalkUser(FULL)
    assert user.userid == "zhangsan"
    assert user.email == "z@example.com"
    assert user.dept_ids == (1, 2)
    with pytest.raises(AttributeError):
        _ = user.no_such_field


def test_dingtalk_user_display_name_falls_back() -> None:
    assert DingTalkUser(Identity(unionid="u", nick="n")).display_name == "n"
    assert DingTalkUser(Identity(unionid="u")).display_name == "u"
