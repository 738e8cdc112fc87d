"""The session cookie (core/session.py): signed, time-limited, rotated, small, cached."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from dingmw.core.session import MAX_COOKIE_BYTES, Sessions
from dingmw.core.signing import Signer, b64decode, b64encode
from dingmw.identity import Identity

from ..support import FULL_IDENTITY as FULL
from .helpers import OLD_SECRET_KEY, SECRET_KEY, Clock, parse_set_cookie

NAME = "dingmw_session"
MAX_AGE = 3600


def sessions(
    clock: Clock, *keys: str, domain: str | None = None, max_age: int = MAX_AGE
) -> Sessions:
    return Sessions(
        secret_keys=keys or (SECRET_KEY,),
        cookie_name=NAME,
        max_age=max_age,
        path="/",
        domain=domain,
        clock=clock,
    )


def issued_value(s: Sessions, identity: Identity = FULL, *, secure: bool = False) -> str:
    cookie = parse_set_cookie(s.issue(identity, secure=secure))
    assert cookie.name == NAME
    return cookie.value


def header_for(value: str) -> str:
    return f"other=1; {NAME}={value}; more=2"


def test_round_trip() -> None:
    clock = Clock()
    s = sessions(clock)
    assert s.load(header_for(issued_value(s))) == FULL


def test_cookie_attributes() -> None:
    clock = Clock()
    cookie = parse_set_cookie(sessions(clock, domain="example.com").issue(FULL, secure=True))
    assert cookie.attrs["path"] == "/"
    assert cookie.attrs["max-age"] == str(MAX_AGE)
    assert cookie.attrs["domain"] == "example.com"
    assert "secure" in cookie.attrs
    assert "httponly" in cookie.attrs
    assert cookie.attrs["samesite"] == "Lax"
    plain = parse_set_cookie(sessions(clock).issue(FULL, secure=False))
    assert "secure" not in plain.attrs
    assert "domain" not in plain.attrs


def test_clear_deletes_the_cookie() -> None:
    cookie = parse_set_cookie(sessions(Clock()).clear(secure=True))
    assert cookie.name == NAME
    assert cookie.value == ""
    assert cookie.attrs["max-age"] == "0"
    assert cookie.attrs["path"] == "/"
    assert "secure" in cookie.attrs


@pytest.mark.parametrize("header", ["", "other=1", f"{NAME}=", f"{NAME}x=abc", "garbage;;=;"])
def test_no_session_cookie(header: str) -> None:
    assert sessions(Clock()).load(header) is None


def test_rotation_old_key_second_still_verifies() -> None:
    clock = Clock()
    old = sessions(clock, OLD_SECRET_KEY)
    value = issued_value(old)
    rotated = sessions(clock, SECRET_KEY, OLD_SECRET_KEY)
    assert rotated.load(header_for(value)) == FULL


def test_rotation_new_cookies_are_signed_with_the_first_key() -> None:
    clock = Clock()
    rotated = sessions(clock, SECRET_KEY, OLD_SECRET_KEY)
    value = issued_value(rotated)
    assert sessions(clock, SECRET_KEY).load(header_for(value)) == FULL
    assert sessions(clock, OLD_SECRET_KEY).load(header_for(value)) is None


def test_removed_key_no_longer_verifies() -> None:
    clock = Clock()
    value = issued_value(sessions(clock, OLD_SECRET_KEY))
    assert sessions(clock, SECRET_KEY).load(header_for(value)) is None


def flip(text: str, index: int) -> str:
    char = text[index]
    return text[:index] + ("B" if char == "A" else "A") + text[index + 1 :]


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda v: flip(v, 5), id="payload-byte"),
        pytest.param(lambda v: flip(v, len(v) - 3), id="mac-byte"),
        pytest.param(lambda v: v.split(".")[0], id="no-mac"),
        pytest.param(lambda v: v + "A", id="longer-mac"),
        pytest.param(lambda v: "." + v.split(".")[1], id="no-payload"),
        pytest.param(lambda v: v.replace(".", "!"), id="no-dot"),
    ],
)
def test_tampered_cookie_fails(tamper: Callable[[str], str]) -> None:
    s = sessions(Clock())
    value = issued_value(s)
    assert s.load(header_for(tamper(value))) is None


def test_changed_identity_with_the_old_mac_fails() -> None:
    s = sessions(Clock())
    body, _, mac = issued_value(s).partition(".")
    data = json.loads(b64decode(body))
    data["id"]["unionid"] = "u-admin"
    forged = b64encode(json.dumps(data).encode()) + "." + mac
    assert s.load(header_for(forged)) is None


def test_expiry() -> None:
    clock = Clock()
    s = sessions(clock)
    value = issued_value(s)
    clock.advance(MAX_AGE - 1)
    assert sessions(clock).load(header_for(value)) == FULL
    clock.advance(1)
    assert sessions(clock).load(header_for(value)) is None


def signed(payload: dict[str, object], key: str = SECRET_KEY) -> str:
    return Signer((key,), "session").sign(json.dumps(payload).encode())


def test_iat_far_in_the_future_fails() -> None:
    clock = Clock()
    now = int(clock())
    future = {"v": 1, "iat": now + 3600, "exp": now + 7200, "id": {"unionid": "u"}}
    assert sessions(clock).load(header_for(signed(future))) is None


def test_small_clock_skew_is_tolerated() -> None:
    clock = Clock()
    now = int(clock())
    skewed = {"v": 1, "iat": now + 30, "exp": now + 3600, "id": {"unionid": "u"}}
    assert sessions(clock).load(header_for(signed(skewed))) == Identity(unionid="u")


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"v": 1, "iat": 0, "exp": "later", "id": {"unionid": "u"}}, id="exp-text"),
        pytest.param({"v": 1, "iat": 0, "id": {"unionid": "u"}}, id="no-exp"),
        pytest.param({"v": 1, "iat": 0, "exp": 4e9, "id": {"unionid": ""}}, id="empty-unionid"),
        pytest.param({"v": 1, "iat": 0, "exp": 4e9, "id": {"nick": "n"}}, id="no-unionid"),
        pytest.param(
            {"v": 1, "iat": 0, "exp": 4e9, "id": {"unionid": "u", "dept_ids": ["x"]}},
            id="bad-dept-ids",
        ),
        # e.g. a future payload format: must read as "no session", not crash every request.
        pytest.param({"v": 2, "iat": 0, "exp": 4e9, "id": "u"}, id="id-not-an-object"),
        pytest.param({"v": 2, "iat": 0, "exp": 4e9, "id": ["u"]}, id="id-a-list"),
    ],
)
def test_signed_but_malformed_payload_fails(payload: dict[str, object]) -> None:
    assert sessions(Clock()).load(header_for(signed(payload))) is None


def test_signed_non_json_fails() -> None:
    value = Signer((SECRET_KEY,), "session").sign(b"\xff not json")
    assert sessions(Clock()).load(header_for(value)) is None


def test_a_large_identity_fits_in_a_cookie() -> None:
    big = Identity(
        unionid="u-big",
        userid="big",
        corp_id="dingcorp",
        nick="大" * 300,
        name="名" * 300,
        email="e" * 300 + "@example.com",
        mobile="1" * 200,
        avatar_url="https://example.com/" + "a" * 2000,
        title="职" * 300,
        job_number="9" * 200,
        dept_ids=tuple(range(100_000, 100_300)),
        flow="oauth2",
    )
    clock = Clock()
    s = sessions(clock)
    header = s.issue(big, secure=True)
    assert len(header.encode("utf-8")) < MAX_COOKIE_BYTES
    loaded = s.load(header_for(parse_set_cookie(header).value))
    assert loaded is not None
    # The identifying fields survive; optional ones were dropped to make room.
    assert (loaded.unionid, loaded.userid, loaded.corp_id, loaded.flow) == (
        "u-big",
        "big",
        "dingcorp",
        "oauth2",
    )
    assert loaded.avatar_url is None


def test_a_normal_identity_keeps_every_field() -> None:
    s = sessions(Clock())
    header = s.issue(FULL, secure=False)
    assert s.load(header_for(parse_set_cookie(header).value)) == FULL


def count_unsign(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    original = Signer.unsign

    def counting(self: Signer, token: str) -> bytes | None:
        calls.append(token)
        return original(self, token)

    monkeypatch.setattr(Signer, "unsign", counting)
    return calls


def test_verified_cookie_cache_skips_the_hmac(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    s = sessions(clock)
    value = issued_value(s)
    calls = count_unsign(monkeypatch)
    first = s.load(header_for(value))
    second = s.load(header_for(value))
    assert first == second == FULL
    assert second is first
    assert len(calls) == 1


def test_verified_cookie_cache_still_honours_expiry(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    s = sessions(clock)
    value = issued_value(s)
    calls = count_unsign(monkeypatch)
    assert s.load(header_for(value)) == FULL
    assert len(calls) == 1
    clock.advance(MAX_AGE)
    assert s.load(header_for(value)) is None
    assert s.load(header_for(value)) is None


def test_cache_does_not_admit_forgeries(monkeypatch: pytest.MonkeyPatch) -> None:
    s = sessions(Clock())
    value = issued_value(s)
    assert s.load(header_for(value)) == FULL
    calls = count_unsign(monkeypatch)
    forged = flip(value, 5)
    assert s.load(header_for(forged)) is None
    assert s.load(header_for(forged)) is None
    assert len(calls) == 2  # each forgery is verified (and refused) again
