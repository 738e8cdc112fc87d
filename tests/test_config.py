"""`Settings.from_env`: every DINGMW_* variable of CONTRACT §3, defaults and bad values."""

from __future__ import annotations

import dataclasses

import pytest

from dingmw import ConfigError, Settings
from dingmw.config import DDLOGIN_SCRIPT_URL, DTFRAME_SCRIPT_URL
from dingmw.hub import HubSettings

APP_SECRET = "APPSECRET-do-not-print-0123456789"
SECRET_KEY = "SIGNINGKEY-do-not-print-abcdefghijklmnop"
OLD_KEY = "OLDSIGNINGKEY-do-not-print-qrstuvwxyz0123"
CORP_SECRET = "CORPSECRET-do-not-print-9876543210"
SECRETS = (APP_SECRET, SECRET_KEY, OLD_KEY, CORP_SECRET)

BASE = {
    "DINGMW_APP_KEY": "dingappkey",
    "DINGMW_APP_SECRET": APP_SECRET,
    "DINGMW_SECRET_KEY": SECRET_KEY,
}


def env(**values: str) -> dict[str, str]:
    return {**BASE, **{f"DINGMW_{k}": v for k, v in values.items()}}


def test_defaults() -> None:
    s = Settings.from_env(BASE)
    assert s.flow == "oauth2"
    assert s.app_key == "dingappkey"
    assert s.app_secret == APP_SECRET
    assert s.secret_keys == (SECRET_KEY,)
    assert s.enrich == "none"
    assert s.corp_app_key is None
    assert s.corp_app_secret is None
    assert s.corp_credentials == ("dingappkey", APP_SECRET)
    assert s.corp_id is None
    assert s.path_prefix == "/dingtalk"
    assert s.public_paths == ()
    assert s.session_max_age == 28800
    assert s.cookie_name == "dingmw_session"
    assert s.cookie_domain is None
    assert s.cookie_secure == "auto"
    assert s.allowed_corp_ids == frozenset()
    assert s.allowed_users == frozenset()
    assert s.allowed_dept_ids == frozenset()
    assert s.store_url == "memory://"
    assert s.base_url is None
    assert s.trust_proxy is False
    assert s.oapi_url == "https://oapi.dingtalk.com"
    assert s.api_url == "https://api.dingtalk.com"
    assert s.login_url == "https://login.dingtalk.com"
    assert s.hub_url is None
    assert s.login_script_url is None
    assert s.widget_script_url == DTFRAME_SCRIPT_URL
    assert s.login_origin == "https://login.dingtalk.com"
    assert s.http_timeout == 5.0


def test_every_variable_is_read() -> None:
    s = Settings.from_env(
        env(
            FLOW="SNS",
            SECRET_KEY=f" {SECRET_KEY} , {OLD_KEY} ",
            ENRICH="detail",
            CORP_APP_KEY="corpkey",
            CORP_APP_SECRET=CORP_SECRET,
            PATH_PREFIX="/sso/",
            PUBLIC_PATHS="/health, /static/* ,,/favicon.ico",
            SESSION_MAX_AGE="3600",
            COOKIE_NAME="my_session",
            COOKIE_DOMAIN=".example.com",
            COOKIE_SECURE="TRUE",
            ALLOWED_CORP_IDS="dingcorp1,dingcorp2",
            ALLOWED_USERS="zhangsan, unionid-lisi",
            ALLOWED_DEPT_IDS="1, 42",
            STORE_URL="redis://cache:6379/2",
            BASE_URL="https://app.example.com/portal/",
            TRUST_PROXY="1",
            OAPI_URL="http://127.0.0.1:9000/oapi/",
            API_URL="http://127.0.0.1:9000/api",
            LOGIN_URL="http://127.0.0.1:9000/login",
            LOGIN_SCRIPT_URL="http://127.0.0.1:9000/ddLogin.js",
            CORP_ID="dingcorp1",
            HTTP_TIMEOUT="2.5",
        )
    )
    assert s.flow == "sns"
    assert s.secret_keys == (SECRET_KEY, OLD_KEY)
    assert s.enrich == "detail"
    assert s.corp_credentials == ("corpkey", CORP_SECRET)
    assert s.path_prefix == "/sso"
    assert s.public_paths == ("/health", "/static/*", "/favicon.ico")
    assert s.session_max_age == 3600
    assert s.cookie_name == "my_session"
    assert s.cookie_domain == ".example.com"
    assert s.cookie_secure == "true"
    assert s.allowed_corp_ids == frozenset({"dingcorp1", "dingcorp2"})
    assert s.allowed_users == frozenset({"zhangsan", "unionid-lisi"})
    assert s.allowed_dept_ids == frozenset({1, 42})
    assert s.store_url == "redis://cache:6379/2"
    assert s.base_url == "https://app.example.com/portal"
    assert s.trust_proxy is True
    assert s.oapi_url == "http://127.0.0.1:9000/oapi"
    assert s.api_url == "http://127.0.0.1:9000/api"
    assert s.login_url == "http://127.0.0.1:9000/login"
    assert s.login_origin == "http://127.0.0.1:9000"
    assert s.login_script_url == "http://127.0.0.1:9000/ddLogin.js"
    assert s.widget_script_url == "http://127.0.0.1:9000/ddLogin.js"
    assert s.corp_id == "dingcorp1"
    assert s.http_timeout == 2.5


@pytest.mark.parametrize("flow", ["sns", "bycode"])
def test_legacy_flows_default_to_ddlogin(flow: str) -> None:
    assert Settings.from_env(env(FLOW=flow)).widget_script_url == DDLOGIN_SCRIPT_URL


def test_hub_flow() -> None:
    s = Settings.from_env(env(FLOW="hub", HUB_URL="https://hub.example.com/"))
    assert s.flow == "hub"
    assert s.hub_url == "https://hub.example.com"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", True),
        ("true", True),
        ("yes", True),
        ("on", True),
        ("0", False),
        ("off", False),
        ("", False),
    ],
)
def test_trust_proxy_values(value: str, expected: bool) -> None:
    assert Settings.from_env(env(TRUST_PROXY=value)).trust_proxy is expected


def test_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in env(FLOW="bycode").items():
        monkeypatch.setenv(name, value)
    assert Settings.from_env().flow == "bycode"


def test_blank_values_mean_unset() -> None:
    s = Settings.from_env(env(COOKIE_DOMAIN="  ", BASE_URL="", SESSION_MAX_AGE=" "))
    assert s.cookie_domain is None
    assert s.base_url is None
    assert s.session_max_age == 28800


# Bad values --------------------------------------------------------------------

BAD = [
    pytest.param("DINGMW_FLOW", "saml", id="flow"),
    pytest.param("DINGMW_ENRICH", "everything", id="enrich"),
    pytest.param("DINGMW_PATH_PREFIX", "dingtalk", id="prefix-relative"),
    pytest.param("DINGMW_PUBLIC_PATHS", "/health,static/*", id="public-relative"),
    pytest.param("DINGMW_SESSION_MAX_AGE", "8h", id="max-age-text"),
    pytest.param("DINGMW_SESSION_MAX_AGE", "1.5", id="max-age-float"),
    pytest.param("DINGMW_SESSION_MAX_AGE", "0", id="max-age-zero"),
    pytest.param("DINGMW_SESSION_MAX_AGE", "-1", id="max-age-negative"),
    pytest.param("DINGMW_COOKIE_NAME", "my session", id="cookie-name-space"),
    pytest.param("DINGMW_COOKIE_NAME", "a;b", id="cookie-name-semicolon"),
    pytest.param("DINGMW_COOKIE_SECURE", "maybe", id="cookie-secure"),
    pytest.param("DINGMW_ALLOWED_DEPT_IDS", "sales,42", id="dept-ids-text"),
    pytest.param("DINGMW_STORE_URL", "postgres://db/1", id="store-url"),
    pytest.param("DINGMW_BASE_URL", "app.example.com", id="base-url-no-scheme"),
    pytest.param("DINGMW_BASE_URL", "ftp://app.example.com", id="base-url-ftp"),
    pytest.param("DINGMW_BASE_URL", "https://app.example.com/?x=1", id="base-url-query"),
    pytest.param("DINGMW_TRUST_PROXY", "sometimes", id="trust-proxy"),
    pytest.param("DINGMW_OAPI_URL", "oapi.dingtalk.com", id="oapi-url"),
    pytest.param("DINGMW_API_URL", "https://", id="api-url-no-host"),
    pytest.param("DINGMW_LOGIN_URL", "javascript:alert(1)", id="login-url"),
    pytest.param("DINGMW_LOGIN_SCRIPT_URL", "//cdn.example/x.js", id="script-url"),
    pytest.param("DINGMW_HUB_URL", "hub.example.com", id="hub-url"),
    pytest.param("DINGMW_HTTP_TIMEOUT", "fast", id="timeout-text"),
    pytest.param("DINGMW_HTTP_TIMEOUT", "0", id="timeout-zero"),
    pytest.param("DINGMW_HTTP_TIMEOUT", "-3", id="timeout-negative"),
    # Every DingTalk call would then fail inside the socket layer with a 500.
    pytest.param("DINGMW_HTTP_TIMEOUT", "nan", id="timeout-nan"),
    pytest.param("DINGMW_HTTP_TIMEOUT", "inf", id="timeout-inf"),
    pytest.param("DINGMW_SECRET_KEY", "short", id="secret-key-short"),
    pytest.param("DINGMW_SECRET_KEY", f"{SECRET_KEY},short", id="secret-key-one-short"),
    pytest.param("DINGMW_SECRET_KEY", " , ", id="secret-key-empty-list"),
    pytest.param("DINGMW_CORP_APP_KEY", "corpkey", id="corp-key-without-secret"),
    pytest.param("DINGMW_CORP_APP_SECRET", CORP_SECRET, id="corp-secret-without-key"),
]


@pytest.mark.parametrize(("name", "value"), BAD)
def test_bad_value_is_refused_naming_the_variable_and_no_secret(name: str, value: str) -> None:
    environ = {
        **BASE,
        "DINGMW_SECRET_KEY": f"{SECRET_KEY},{OLD_KEY}",
        "DINGMW_CORP_APP_KEY": "corpkey",
        "DINGMW_CORP_APP_SECRET": CORP_SECRET,
        name: value,
    }
    if name == "DINGMW_CORP_APP_KEY":
        del environ["DINGMW_CORP_APP_SECRET"]
    elif name == "DINGMW_CORP_APP_SECRET":
        del environ["DINGMW_CORP_APP_KEY"]
    with pytest.raises(ConfigError) as info:
        Settings.from_env(environ)
    message = str(info.value)
    assert name in message
    for secret in SECRETS:
        assert secret not in message


def test_short_secret_key_is_not_echoed() -> None:
    short_secret = "tiny-but-secret-123"
    with pytest.raises(ConfigError) as info:
        Settings.from_env({**BASE, "DINGMW_SECRET_KEY": short_secret})
    assert "DINGMW_SECRET_KEY" in str(info.value)
    assert "32" in str(info.value)
    assert short_secret not in str(info.value)
    assert short_secret not in repr(info.value)


@pytest.mark.parametrize("name", ["DINGMW_APP_KEY", "DINGMW_APP_SECRET", "DINGMW_SECRET_KEY"])
@pytest.mark.parametrize("missing", ["absent", "blank"])
def test_required_variables(name: str, missing: str) -> None:
    environ = dict(BASE)
    if missing == "absent":
        del environ[name]
    else:
        environ[name] = "   "
    with pytest.raises(ConfigError) as info:
        Settings.from_env(environ)
    assert name in str(info.value)
    for secret in SECRETS:
        assert secret not in str(info.value)


def test_dept_ids_need_enrich_detail() -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env(ALLOWED_DEPT_IDS="1,2"))
    assert "DINGMW_ALLOWED_DEPT_IDS" in str(info.value)
    assert "DINGMW_ENRICH" in str(info.value)
    assert Settings.from_env(env(ALLOWED_DEPT_IDS="1,2", ENRICH="detail")).allowed_dept_ids == {
        1,
        2,
    }


def test_hub_flow_needs_hub_url() -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env(FLOW="hub"))
    assert "DINGMW_HUB_URL" in str(info.value)


def test_repr_hides_every_secret() -> None:
    s = Settings.from_env(
        env(SECRET_KEY=f"{SECRET_KEY},{OLD_KEY}", CORP_APP_KEY="ck", CORP_APP_SECRET=CORP_SECRET)
    )
    text = repr(s) + str(s)
    for secret in SECRETS:
        assert secret not in text
    assert "dingappkey" in text  # the app key is not a secret and helps debugging


def test_settings_are_frozen() -> None:
    s = Settings.from_env(BASE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.app_key = "other"  # type: ignore[misc]  # the point of the test


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"state_max_age": 0}, id="state-max-age"),
        pytest.param({"path_prefix": "/x/"}, id="prefix-trailing-slash"),
        pytest.param({"secret_keys": ()}, id="no-keys"),
        pytest.param({"app_key": ""}, id="empty-app-key"),
    ],
)
def test_direct_construction_is_validated_too(overrides: dict[str, object]) -> None:
    values: dict[str, object] = {
        "app_key": "k",
        "app_secret": APP_SECRET,
        "secret_keys": (SECRET_KEY,),
        **overrides,
    }
    with pytest.raises(ConfigError):
        Settings(**values)  # type: ignore[arg-type]  # deliberately loose test input


# Every problem at once, never a traceback, never a secret ----------------------------------


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"DINGMW_SESSION_MAX_AGE": "8h", "DINGMW_COOKIE_SECURE": "maybe"})
    problems = info.value.problems
    assert problems == (
        "DINGMW_APP_KEY is required",
        "DINGMW_APP_SECRET is required",
        "DINGMW_SECRET_KEY is required",
        "DINGMW_SESSION_MAX_AGE must be a whole number of seconds",
        "DINGMW_COOKIE_SECURE must be one of auto, true, false",
    )
    assert str(info.value) == "; ".join(problems)


def test_a_rule_over_several_settings_waits_for_its_fields() -> None:
    """A malformed DINGMW_FLOW does not also produce a misleading DINGMW_HUB_URL problem."""
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env(FLOW="hubb", CORP_APP_KEY="ck"))
    assert info.value.problems == (
        "DINGMW_FLOW must be one of oauth2, sns, bycode, hub",
        "DINGMW_CORP_APP_KEY and DINGMW_CORP_APP_SECRET must be set together",
    )


URL_VARIABLES = [
    "DINGMW_BASE_URL",
    "DINGMW_OAPI_URL",
    "DINGMW_API_URL",
    "DINGMW_LOGIN_URL",
    "DINGMW_HUB_URL",
    "DINGMW_LOGIN_SCRIPT_URL",
    "DINGMW_JSAPI_SCRIPT_URL",
    "DINGMW_STORE_URL",
]


@pytest.mark.parametrize("name", URL_VARIABLES)
@pytest.mark.parametrize(
    "value", ["http://[intra.example.com", "https://host:port/x", "redis://h:99999999/0"]
)
def test_a_malformed_url_is_one_clear_message(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env(**{name.removeprefix("DINGMW_"): value}))
    assert info.value.problems[0].startswith(f"{name} ")
    assert len(info.value.problems) == 1
    assert value not in str(info.value)


WEIRD = ["[", "{", "]", "%", "%zz", "\x00", "http://[::1", "-1", "nan", "1e999", ",", "://", "é"]


@pytest.mark.parametrize("value", WEIRD)
def test_no_value_of_any_variable_escapes_as_another_exception(value: str) -> None:
    from dingmw.declare import specs

    messages: list[tuple[str, str]] = []
    for _, spec in specs(Settings):
        if spec.env is None:
            continue
        environ = {**env(FLOW="hub", HUB_URL="https://hub.example"), spec.env: value}
        try:
            Settings.from_env(environ)
        except ConfigError as exc:  # anything else fails the test
            messages.extend((spec.env, problem) for problem in exc.problems)
    for name, problem in messages:
        assert name in problem, problem


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DINGMW_APP_SECRET", " "),
        ("DINGMW_SECRET_KEY", "short-secret-value"),
        ("DINGMW_SECRET_KEY", f"{SECRET_KEY},short-secret-value"),
        ("DINGMW_CORP_APP_SECRET", "corp-secret-without-key"),
    ],
)
def test_no_message_echoes_a_secret(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({**BASE, name: value})
    assert name in str(info.value) or "DINGMW_CORP_APP_KEY" in str(info.value)
    for secret in (*SECRETS, value.split(",")[-1]):
        if secret.strip():
            assert secret not in str(info.value)
            assert secret not in repr(info.value)


def test_hub_clients_as_a_single_object_says_so() -> None:
    client = (
        '{"client_id": "wiki", "client_secret": "wiki-secret-0123456789",'
        ' "redirect_urls": ["https://wiki.example.com/dingtalk/callback"]}'
    )
    with pytest.raises(ConfigError) as info:
        HubSettings.from_env(env(HUB_CLIENTS=client))
    message = str(info.value)
    assert message.startswith("DINGMW_HUB_CLIENTS must be a JSON list of clients, not a single")
    assert "[{...}]" in message
    assert "cannot read the file" not in message
    assert "wiki-secret-0123456789" not in message
    listed = HubSettings.from_env(env(HUB_CLIENTS=f"[{client}]"))
    assert [c.client_id for c in listed.clients] == ["wiki"]


def test_hub_clients_file_that_is_missing() -> None:
    with pytest.raises(ConfigError) as info:
        HubSettings.from_env(env(HUB_CLIENTS="/nonexistent/clients.json"))
    assert str(info.value).startswith("DINGMW_HUB_CLIENTS: cannot read the file")


def test_unknown_variable_is_a_warning_with_a_suggestion(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level("WARNING", logger="dingmw.config"):
        s = Settings.from_env(env(PUBLIC_PATH="/health", WHATEVER_ELSE="1"))
    assert s.public_paths == ()
    messages = [r.getMessage() for r in caplog.records]
    assert (
        "DINGMW_PUBLIC_PATH is not a dingmw setting and is ignored "
        "(did you mean DINGMW_PUBLIC_PATHS?)"
    ) in messages
    assert "DINGMW_WHATEVER_ELSE is not a dingmw setting and is ignored" in messages


def test_direct_construction_names_the_field_without_a_variable() -> None:
    with pytest.raises(ConfigError) as info:
        Settings(app_key="k", app_secret=APP_SECRET, secret_keys=(SECRET_KEY,), state_max_age=0)
    assert str(info.value) == "state_max_age must be a positive number of seconds"


def test_a_second_settings_class_uses_the_same_declarations() -> None:
    """What the hub's own settings (or any other part) declare works the same way."""
    from dingmw.declare import Seconds, declared, from_env, setting, shown

    @declared
    class Extra:
        ttl: int = setting(
            env="DINGMW_EXTRA_TTL", group="Extra", kind=Seconds(), default=60, help="seconds"
        )
        token: str = setting(env="DINGMW_EXTRA_TOKEN", group="Extra", secret=True, help="a secret")

    made = from_env(Extra, {"DINGMW_EXTRA_TTL": "30", "DINGMW_EXTRA_TOKEN": APP_SECRET})
    assert (made.ttl, made.token) == (30, APP_SECRET)
    assert APP_SECRET not in repr(made)
    assert dict(shown(made, {"DINGMW_EXTRA_TOKEN": "x"}))["DINGMW_EXTRA_TOKEN"] == (
        f"(secret: {len(APP_SECRET)} characters)"
    )
    with pytest.raises(ConfigError) as info:
        from_env(Extra, {"DINGMW_EXTRA_TTL": "0"})
    assert info.value.problems == (
        "DINGMW_EXTRA_TTL must be a positive number of seconds",
        "DINGMW_EXTRA_TOKEN is required",
    )


def test_hub_client_redirect_url_with_a_stray_bracket() -> None:
    clients = '[{"client_id": "wiki", "client_secret": "wiki-secret-0123456789",'
    clients += ' "redirect_urls": ["https://[wiki.example.com/cb"]}]'
    with pytest.raises(ConfigError) as info:
        HubSettings.from_env(env(HUB_CLIENTS=clients))
    assert str(info.value) == "DINGMW_HUB_CLIENTS: a redirect URL of 'wiki' is not a valid URL"
