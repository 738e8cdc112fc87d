"""The session cookie (core/session.py): encrypted, one spelling, time-limited, rotated,
bound to one audience, small, and cached by value within a byte bound."""

from __future__ import annotations

import base64
import json
import logging
import tracemalloc
from collections.abc import Callable

import pytest

from dingmw.core.outcome import Forward
from dingmw.core.session import MAX_COOKIE_BYTES, Entry, Sessions
from dingmw.core.signing import Sealer, b64decode, b64encode
from dingmw.identity import Identity
from dingmw.session_cache import BAD_OVERHEAD, VerifiedSessions

from ..support import FULL_IDENTITY as FULL
from .helpers import OLD_SECRET_KEY, SECRET_KEY, Clock, parse_set_cookie

NAME = "dingmw_session"
MAX_AGE = 3600
AUDIENCE = "audience-a"


def sessions(
    clock: Clock,
    *keys: str,
    domain: str | None = None,
    max_age: int = MAX_AGE,
    audience: str = AUDIENCE,
    cache: VerifiedSessions | None = None,
) -> Sessions:
    return Sessions(
        secret_keys=keys or (SECRET_KEY,),
        cookie_name=NAME,
        max_age=max_age,
        path="/",
        domain=domain,
        clock=clock,
        cache=cache if cache is not None else VerifiedSessions(timer=clock),
        audience=audience,
        recheck=60,
    )


def issued_value(s: Sessions, identity: Identity = FULL, *, secure: bool = False) -> str:
    cookie = parse_set_cookie(s.issue(identity, secure=secure))
    assert cookie.name == NAME
    return cookie.value


def header_for(value: str) -> str:
    return f"other=1; {NAME}={value}; more=2"


def cached(s: Sessions, header: str) -> Forward | None:
    """The hot path's answer for a request to the app's `/` carrying `header`."""
    return s.hot("/dingtalk")("/", header)


def load(s: Sessions, header: str) -> Identity | None:
    found = s.lookup(header)
    return found[1].session.identity if found is not None else None


def fresh(clock: Clock, *keys: str, audience: str = AUDIENCE) -> Sessions:
    """Another process: same settings, an empty cache."""
    return sessions(clock, *keys, audience=audience)


def test_round_trip_in_another_process() -> None:
    clock = Clock()
    value = issued_value(sessions(clock))
    assert load(fresh(clock), header_for(value)) == FULL


def test_the_issuing_process_has_the_session_checked_already() -> None:
    clock = Clock()
    s = sessions(clock)
    value = issued_value(s)
    forward = cached(s, header_for(value))
    assert forward is not None
    assert forward.identity == FULL
    assert cached(fresh(clock), header_for(value)) is None  # elsewhere: verified on first use


def test_nothing_personal_is_readable_in_the_cookie() -> None:
    value = issued_value(sessions(Clock()))
    raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    for field in ("u-1", "o-1", "zhangsan", "z@example.com", "13800000000", "0042", "dingcorp"):
        assert field.encode() not in raw
    for field in ("小张", "张三", "工程师"):
        assert field.encode("utf-8") not in raw
    assert b"unionid" not in raw


def test_every_cookie_is_different_even_for_one_person() -> None:
    s = sessions(Clock())
    assert issued_value(s) != issued_value(s)


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
    assert load(sessions(Clock()), header) is None


def test_rotation_old_key_second_still_opens() -> None:
    clock = Clock()
    value = issued_value(sessions(clock, OLD_SECRET_KEY))
    assert load(fresh(clock, SECRET_KEY, OLD_SECRET_KEY), header_for(value)) == FULL


def test_rotation_new_cookies_are_sealed_with_the_first_key() -> None:
    clock = Clock()
    value = issued_value(sessions(clock, SECRET_KEY, OLD_SECRET_KEY))
    assert load(fresh(clock, SECRET_KEY), header_for(value)) == FULL
    assert load(fresh(clock, OLD_SECRET_KEY), header_for(value)) is None


def test_removed_key_no_longer_opens() -> None:
    clock = Clock()
    value = issued_value(sessions(clock, OLD_SECRET_KEY))
    assert load(fresh(clock, SECRET_KEY), header_for(value)) is None


def flip(text: str, index: int) -> str:
    char = text[index]
    return text[:index] + ("B" if char == "A" else "A") + text[index + 1 :]


def last_char_other_spelling(value: str) -> str:
    """The same bytes with different unused trailing bits (a second base64 spelling)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    unused = {2: 4, 3: 2}.get(len(value) % 4, 0)
    assert unused, "this cookie length has no unused bits"
    index = alphabet.index(value[-1])
    return value[:-1] + alphabet[index ^ 1]


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda v: flip(v, 5), id="nonce-byte"),
        pytest.param(lambda v: flip(v, len(v) // 2), id="ciphertext-byte"),
        pytest.param(lambda v: flip(v, len(v) - 3), id="tag-byte"),
        pytest.param(lambda v: v[:-4], id="truncated"),
        pytest.param(lambda v: v + "AAAA", id="longer"),
        pytest.param(lambda v: b64encode(b"\x02" + b64decode(v)[1:]), id="version"),
        pytest.param(lambda v: v[:40], id="short"),
    ],
)
def test_tampered_cookie_fails(tamper: Callable[[str], str]) -> None:
    clock = Clock()
    value = issued_value(sessions(clock))
    assert load(fresh(clock), header_for(tamper(value))) is None


@pytest.mark.parametrize(
    "respell",
    [
        pytest.param(lambda v: v + "=" * (4 - len(v) % 4), id="padding"),
        pytest.param(lambda v: v.replace("-", "+").replace("_", "/"), id="standard-alphabet"),
        pytest.param(last_char_other_spelling, id="trailing-bits"),
        pytest.param(lambda v: v[:10] + "." + v[10:], id="stray-character"),
        pytest.param(lambda v: v[:10] + "\t" + v[10:], id="inner-tab"),
        pytest.param(lambda v: v[:10] + "%41" + v[11:], id="percent-encoded"),
    ],
)
def test_only_one_spelling_of_a_cookie_is_accepted(respell: Callable[[str], str]) -> None:
    clock = Clock()
    s = sessions(clock)
    # A cookie whose base64 has unused trailing bits and both "-" and "_" in it.
    value = next(
        v
        for i in range(1000)
        for v in [issued_value(s, Identity(unionid="u" * (1 + i % 3)))]
        if len(v) % 4 in (2, 3) and "-" in v and "_" in v
    )
    other = respell(value)
    assert other != value
    assert load(fresh(clock), header_for(value)) is not None
    assert load(fresh(clock), header_for(other)) is None


def sealed(payload: object, key: str = SECRET_KEY, aad: bytes = NAME.encode()) -> str:
    return Sealer((key,), "session").seal(json.dumps(payload).encode(), aad)


def good_payload(clock: Clock, **changes: object) -> dict[str, object]:
    now = int(clock())
    payload: dict[str, object] = {
        "sid": "s1",
        "aud": AUDIENCE,
        "iat": now * 1000,
        "exp": now + 600,
        "id": {"unionid": "u"},
    }
    payload.update(changes)
    return payload


def test_a_hand_sealed_payload_opens() -> None:
    clock = Clock()
    assert load(sessions(clock), header_for(sealed(good_payload(clock)))) == Identity(unionid="u")


def test_another_audience_is_refused_with_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    value = issued_value(sessions(clock, audience="site-b"))
    with caplog.at_level(logging.INFO, logger="dingmw"):
        assert load(fresh(clock, audience=AUDIENCE), header_for(value)) is None
    assert "issued for another site" in caplog.text
    assert "DINGMW_SESSION_AUDIENCE" in caplog.text


def test_a_cookie_sealed_for_another_purpose_or_name_fails() -> None:
    clock = Clock()
    payload = json.dumps(good_payload(clock)).encode()
    for other in (
        Sealer((SECRET_KEY,), "state").seal(payload, NAME.encode()),
        Sealer((SECRET_KEY,), "session").seal(payload, b"other_cookie"),
    ):
        assert load(sessions(clock), header_for(other)) is None


def test_expiry() -> None:
    clock = Clock()
    value = issued_value(sessions(clock))
    clock.advance(MAX_AGE - 1)
    assert load(fresh(clock), header_for(value)) == FULL
    clock.advance(1)
    assert load(fresh(clock), header_for(value)) is None


def test_expiry_also_applies_to_a_cached_session() -> None:
    clock = Clock()
    s = sessions(clock)
    value = issued_value(s)
    assert load(s, header_for(value)) == FULL
    clock.advance(MAX_AGE)
    assert cached(s, header_for(value)) is None
    assert load(s, header_for(value)) is None


def test_iat_far_in_the_future_fails() -> None:
    clock = Clock()
    now = int(clock())
    future = good_payload(clock, iat=(now + 3600) * 1000, exp=now + 7200)
    assert load(sessions(clock), header_for(sealed(future))) is None


def test_small_clock_skew_is_tolerated() -> None:
    clock = Clock()
    now = int(clock())
    skewed = good_payload(clock, iat=(now + 30) * 1000)
    assert load(sessions(clock), header_for(sealed(skewed))) == Identity(unionid="u")


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"exp": "later"}, id="exp-text"),
        pytest.param({"exp": 4e9}, id="exp-float"),
        pytest.param({"iat": None}, id="iat-none"),
        pytest.param({"sid": 1}, id="sid-number"),
        pytest.param({"aud": None}, id="aud-none"),
        pytest.param({"id": {"unionid": ""}}, id="empty-unionid"),
        pytest.param({"id": {"nick": "n"}}, id="no-unionid"),
        pytest.param({"id": {"unionid": "u", "dept_ids": ["x"]}}, id="bad-dept-ids"),
        pytest.param({"id": "u"}, id="id-not-an-object"),
        pytest.param({"id": ["u"]}, id="id-a-list"),
    ],
)
def test_sealed_but_malformed_payload_fails(changes: dict[str, object]) -> None:
    clock = Clock()
    assert load(sessions(clock), header_for(sealed(good_payload(clock, **changes)))) is None


def test_sealed_non_json_fails() -> None:
    value = Sealer((SECRET_KEY,), "session").seal(b"\xff not json", NAME.encode())
    assert load(sessions(Clock()), header_for(value)) is None


def test_every_field_filled_fits_in_a_cookie() -> None:
    s = sessions(Clock())
    header = s.issue(FULL, secure=True)
    assert len(header.encode("utf-8")) < 4096 - 500  # room for other cookies
    assert load(fresh(Clock()), header_for(parse_set_cookie(header).value)) == FULL


def test_a_huge_identity_still_fits_in_a_cookie() -> None:
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
    header = sessions(clock).issue(big, secure=True)
    assert len(header.encode("utf-8")) < MAX_COOKIE_BYTES
    loaded = load(fresh(clock), header_for(parse_set_cookie(header).value))
    assert loaded is not None
    # The identifying fields survive; optional ones were dropped to make room.
    assert (loaded.unionid, loaded.userid, loaded.corp_id, loaded.flow) == (
        "u-big",
        "big",
        "dingcorp",
        "oauth2",
    )
    assert loaded.avatar_url is None


# The cache of verified sessions -------------------------------------------------


def count_unseal(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    original = Sealer.unseal

    def counting(self: Sealer, token: str, aad: bytes = b"") -> bytes | None:
        calls.append(token)
        return original(self, token, aad)

    monkeypatch.setattr(Sealer, "unseal", counting)
    return calls


def test_a_verified_cookie_is_opened_once(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    value = issued_value(sessions(clock))
    s = fresh(clock)
    calls = count_unseal(monkeypatch)
    assert load(s, header_for(value)) == FULL
    assert load(s, header_for(value)) == FULL
    assert len(calls) == 1


def test_the_cache_is_keyed_by_the_cookie_value_not_the_header(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    cache = VerifiedSessions(timer=clock)
    s = sessions(clock, cache=cache)
    value = issued_value(sessions(clock))
    calls = count_unseal(monkeypatch)
    for i in range(50):
        junk = f"junk{i}=" + "x" * 10_000
        assert load(s, f"{junk}; {NAME}={value}; more{i}=1") == FULL
    assert len(calls) == 1
    assert len(cache) == 1
    assert cache.weight < 20_000  # the junk is in no entry


def test_a_bad_cookie_is_remembered_as_bad_briefly(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    s = sessions(clock)
    forged = flip(issued_value(s), 20)
    calls = count_unseal(monkeypatch)
    assert load(s, header_for(forged)) is None
    assert load(s, header_for(forged)) is None
    assert cached(s, header_for(forged)) is None
    assert len(calls) == 1
    clock.advance(61)
    assert load(s, header_for(forged)) is None
    assert len(calls) == 2


def test_an_oversized_cookie_is_refused_without_opening_or_caching(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    cache = VerifiedSessions(timer=clock)
    s = sessions(clock, cache=cache)
    calls = count_unseal(monkeypatch)
    assert load(s, header_for("A" * 10_000_000)) is None
    assert calls == []
    assert cache.weight == 0


def test_the_cache_never_holds_more_than_its_bytes() -> None:
    clock = Clock()
    cache = VerifiedSessions(max_bytes=200_000, bad_bytes=50_000, timer=clock)
    s = sessions(clock, cache=cache)
    issuer = sessions(clock)
    for i in range(300):
        value = issued_value(issuer, Identity(unionid=f"u-{i}", name="张三" * 20))
        assert load(s, header_for(value)) is not None
        assert load(s, header_for(b64encode(bytes([i % 256]) * 3000))) is None
        assert cache.weight <= 250_000
    assert 0 < len(cache) < 300  # the least recently used were dropped


def test_the_least_recently_used_session_is_dropped_first() -> None:
    clock = Clock()
    issuer = sessions(clock)
    values = [issued_value(issuer, Identity(unionid=f"u-{i}")) for i in range(4)]
    probe = VerifiedSessions()
    s = sessions(clock, cache=probe)
    first = s.lookup(header_for(values[0]))
    assert first is not None
    # Room for three sessions of this size, not four.
    cache = VerifiedSessions(max_bytes=first[1].size * 3 + first[1].size // 2, timer=clock)
    s = sessions(clock, cache=cache)
    for value in values[:3]:
        found = s.lookup(header_for(value))
        assert found is not None
        s.checked(found[1])
    clock.advance(s.recheck)
    assert cached(s, header_for(values[0])) is None  # due for its re-check
    assert s.due(header_for(values[0])) is not None  # values[0] is now the most recent
    assert s.lookup(header_for(values[3])) is not None  # a fourth: the LRU one goes
    assert len(cache) == 3
    assert cache.get(values[1]) is None  # dropped from the hot path's index too
    assert [cache.get(v) is not None for v in (values[0], values[2], values[3])] == [True] * 3


class CountingCache(VerifiedSessions):
    def __init__(self, clock: Clock) -> None:
        super().__init__(timer=clock)
        self.touched: list[str] = []

    def touch(self, value: str) -> None:
        self.touched.append(value)
        super().touch(value)


def test_a_hit_writes_nothing_and_a_recheck_records_the_use() -> None:
    """The hot path is one dict read; the LRU order is updated when a re-check is due."""
    clock = Clock()
    cache = CountingCache(clock)
    s = sessions(clock, cache=cache)
    value = issued_value(s)
    for _ in range(100):
        assert cached(s, header_for(value)) is not None
    assert cache.touched == []
    clock.advance(s.recheck)
    assert cached(s, header_for(value)) is None
    due = s.due(header_for(value))
    assert due is not None
    assert cache.touched == [value]
    s.checked(due[1])
    for _ in range(100):
        assert cached(s, header_for(value)) is not None
    assert cache.touched == [value]


def test_a_due_recheck_is_never_hidden() -> None:
    clock = Clock()
    s = sessions(clock)
    value = issued_value(s)
    assert cached(s, header_for(value)) is not None
    clock.advance(s.recheck - 1)
    assert cached(s, header_for(value)) is not None
    clock.advance(1)
    assert cached(s, header_for(value)) is None
    due = s.due(header_for(value))
    assert due is not None
    s.checked(due[1])  # re-checked: good for another minute
    assert cached(s, header_for(value)) is not None
    s.recheck_person(FULL.unionid)  # "log out everywhere" seen: due again at once
    assert cached(s, header_for(value)) is None


def test_the_weight_of_an_entry_covers_its_memory() -> None:
    """`Entry.size` (what the byte bound counts) is at least what an entry really holds."""
    clock = Clock()
    values = [issued_value(sessions(clock), FULL) for _ in range(200)]
    s = fresh(clock)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        found = [s.lookup(header_for(value)) for value in values]
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    entries: list[Entry] = [item[1] for item in found if item is not None]
    assert len(entries) == 200
    assert used <= sum(entry.size for entry in entries)


def test_the_weight_of_a_bad_value_covers_its_memory() -> None:
    cache = VerifiedSessions()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(500):
            cache.add_bad(f"{i:04d}" + "x" * 100)
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert used <= 500 * (104 + BAD_OVERHEAD)


def test_the_hot_path_reads_the_cookie_as_the_full_parse_does() -> None:
    """The hot path reads the cookie's value with a few `find`s when it can: on many random
    headers mixing a verified session's cookie with others and with other spellings, it
    answers with the session exactly when `cookie_value` finds that session's value."""
    import random

    from dingmw.core.http import cookie_value

    s = sessions(Clock())
    rng = random.Random(8)  # noqa: S311  # reproducible test data, not a secret
    sealed = issued_value(s)
    parts = [
        f"{NAME}={sealed}",
        f"{NAME}=other",
        f'{NAME}="{sealed}"',
        f"x{NAME}={sealed}",
        f"{NAME}x={sealed}",
        f'pref="a; {NAME}={sealed}"',
        f"{NAME} ={sealed}",
        f"{NAME}= {sealed}",
        f"{NAME}={sealed}\t",
        f"{NAME}=in side",
        f"{NAME}",
        f"a={NAME}={sealed}",
        "a=1",
        "b=2 ",
        ' c="x;y"',
        "\td=4",
        "=nameless",
        "",
    ]
    seps = [";", "; ", " ; ", ";\t", ";  "]
    hit = s.hot("/dingtalk")
    found = 0
    for _ in range(5000):
        chosen = [rng.choice(parts) for _ in range(rng.randint(1, 5))]
        header = "".join(p + rng.choice(seps) for p in chosen[:-1]) + chosen[-1]
        forward = hit("/", header)
        assert (forward is not None) == (cookie_value(header, NAME) == sealed), header
        assert hit("/dingtalk/me", header) is None
        assert hit("/dingtalk", header) is None
        assert hit("/dingtalkx", header) == forward  # an app path that starts like ours
        found += forward is not None
    assert found > 200


@pytest.mark.parametrize(
    "spelling",
    [
        '{name}="{value}"',  # quoted: werkzeug would un-quote it
        '{name}="\\{value}"',  # an escape werkzeug would drop
        "{name} ={value}",
        "{name}= {value}",
        "{name}={value} ",
        " {name}={value}",
        "a=1;  {name}={value}",
        '{name}="x"; {name}={value}',  # the first one wins, and it is spelt otherwise
    ],
)
def test_a_session_cookie_spelt_otherwise_is_no_session(spelling: str) -> None:
    """One spelling of a session cookie: any other is refused, so a stolen cookie cannot be
    replayed in a form a log rule or a firewall written for the real one would miss."""
    s = sessions(Clock())
    value = issued_value(s)
    assert s.lookup(f"a=1; {NAME}={value}") is not None
    header = spelling.format(name=NAME, value=value)
    assert s.lookup(header) is None, header
    assert cached(s, header) is None, header
    assert not s.has_cookie(header), header
