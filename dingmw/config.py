"""Settings: every `DINGMW_*` variable, validated once at start-up.

`Settings.from_env()` is the only place that reads the environment. A bad or
missing value raises `ConfigError` naming the variable; secrets are never
echoed in a message or a `repr`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from collections.abc import Mapping
from typing import Literal
from urllib.parse import urlsplit

from .errors import ConfigError

Flow = Literal["oauth2", "sns", "bycode", "hub"]
Enrich = Literal["none", "detail"]
CookieSecure = Literal["auto", "true", "false"]

FLOWS: tuple[str, ...] = ("oauth2", "sns", "bycode", "hub")
MIN_SECRET_KEY_LENGTH = 32
MIN_CLIENT_SECRET_LENGTH = 16

DEFAULT_OAPI_URL = "https://oapi.dingtalk.com"
DEFAULT_API_URL = "https://api.dingtalk.com"
DEFAULT_LOGIN_URL = "https://login.dingtalk.com"
# The official widget scripts (dingtalk-api.md §1.1 and §5).
DDLOGIN_SCRIPT_URL = "https://g.alicdn.com/dingding/dinglogin/0.0.5/ddLogin.js"
DTFRAME_SCRIPT_URL = "https://g.alicdn.com/dingding/h5-dingtalk-login/0.21.0/ddlogin.js"
JSAPI_SCRIPT_URL = "https://g.alicdn.com/dingding/dingtalk-jsapi/3.0.25/dingtalk.open.js"

_COOKIE_NAME_RE = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class HubClient:
    """A site registered at the hub (`DINGMW_HUB_CLIENTS`)."""

    client_id: str
    client_secret: str = dataclasses.field(repr=False)
    redirect_urls: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.client_id or not _CLIENT_ID_RE.match(self.client_id):
            raise ConfigError(
                "DINGMW_HUB_CLIENTS: every client_id must be 1-128 letters, digits, '.', '_' or '-'"
            )
        if len(self.client_secret) < MIN_CLIENT_SECRET_LENGTH:
            raise ConfigError(
                f"DINGMW_HUB_CLIENTS: the client_secret of {self.client_id!r} must be at least "
                f"{MIN_CLIENT_SECRET_LENGTH} characters"
            )
        if not self.redirect_urls:
            raise ConfigError(f"DINGMW_HUB_CLIENTS: {self.client_id!r} needs redirect_urls")
        for url in self.redirect_urls:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
                raise ConfigError(
                    f"DINGMW_HUB_CLIENTS: redirect URL {url!r} of {self.client_id!r} must be an "
                    "absolute http(s) URL without a fragment"
                )


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Validated configuration. Build it with `Settings.from_env()` or directly."""

    app_key: str
    app_secret: str = dataclasses.field(repr=False)
    secret_keys: tuple[str, ...] = dataclasses.field(repr=False)
    flow: Flow = "oauth2"
    enrich: Enrich = "none"
    corp_app_key: str | None = None
    corp_app_secret: str | None = dataclasses.field(default=None, repr=False)
    corp_id: str | None = None
    path_prefix: str = "/dingtalk"
    public_paths: tuple[str, ...] = ()
    session_max_age: int = 28800
    state_max_age: int = 600
    cookie_name: str = "dingmw_session"
    cookie_domain: str | None = None
    cookie_secure: CookieSecure = "auto"
    allowed_corp_ids: frozenset[str] = frozenset()
    allowed_users: frozenset[str] = frozenset()
    allowed_dept_ids: frozenset[int] = frozenset()
    store_url: str = "memory://"
    base_url: str | None = None
    trust_proxy: bool = False
    oapi_url: str = DEFAULT_OAPI_URL
    api_url: str = DEFAULT_API_URL
    login_url: str = DEFAULT_LOGIN_URL
    hub_url: str | None = None
    login_script_url: str | None = None
    jsapi_script_url: str = JSAPI_SCRIPT_URL
    http_timeout: float = 5.0
    hub_clients: tuple[HubClient, ...] = ()
    hub_code_ttl: int = 60
    hub_token_ttl: int = 7200
    hub_refresh_ttl: int = 30 * 86400

    def __post_init__(self) -> None:
        if self.flow not in FLOWS:
            raise ConfigError(f"DINGMW_FLOW must be one of {', '.join(FLOWS)}")
        if not self.app_key:
            raise ConfigError("DINGMW_APP_KEY is required")
        if not self.app_secret:
            raise ConfigError("DINGMW_APP_SECRET is required")
        if not self.secret_keys:
            raise ConfigError("DINGMW_SECRET_KEY is required")
        for key in self.secret_keys:
            if len(key) < MIN_SECRET_KEY_LENGTH:
                raise ConfigError(
                    f"DINGMW_SECRET_KEY: every key must be at least {MIN_SECRET_KEY_LENGTH} "
                    "characters (generate one with: python -c 'import secrets; "
                    "print(secrets.token_urlsafe(48))')"
                )
        if self.enrich not in ("none", "detail"):
            raise ConfigError("DINGMW_ENRICH must be 'none' or 'detail'")
        if (self.corp_app_key is None) != (self.corp_app_secret is None):
            raise ConfigError("DINGMW_CORP_APP_KEY and DINGMW_CORP_APP_SECRET must be set together")
        if not self.path_prefix.startswith("/") or self.path_prefix.endswith("/"):
            raise ConfigError(
                "DINGMW_PATH_PREFIX must start with '/' and not end with '/' (e.g. /dingtalk)"
            )
        for pattern in self.public_paths:
            if not pattern.startswith("/"):
                raise ConfigError(f"DINGMW_PUBLIC_PATHS: {pattern!r} must start with '/'")
        if self.session_max_age <= 0:
            raise ConfigError("DINGMW_SESSION_MAX_AGE must be a positive number of seconds")
        if self.state_max_age <= 0:
            raise ConfigError("state_max_age must be a positive number of seconds")
        if not _COOKIE_NAME_RE.match(self.cookie_name):
            raise ConfigError("DINGMW_COOKIE_NAME may use only letters, digits, '_' and '-'")
        if self.cookie_secure not in ("auto", "true", "false"):
            raise ConfigError("DINGMW_COOKIE_SECURE must be auto, true or false")
        if self.allowed_dept_ids and self.enrich != "detail" and self.flow != "hub":
            raise ConfigError(
                "DINGMW_ALLOWED_DEPT_IDS needs DINGMW_ENRICH=detail (departments come from "
                "the user's detail)"
            )
        if (
            self.allowed_corp_ids
            and self.flow in ("sns", "bycode")
            and not (self.enrich == "detail" and self.corp_id)
        ):
            raise ConfigError(
                f"DINGMW_ALLOWED_CORP_IDS needs DINGMW_ENRICH=detail and DINGMW_CORP_ID with "
                f"DINGMW_FLOW={self.flow} (that flow does not say which organisation a person "
                "belongs to; members found by the lookup belong to DINGMW_CORP_ID)"
            )
        if self.flow == "hub" and not self.hub_url:
            raise ConfigError("DINGMW_HUB_URL is required when DINGMW_FLOW=hub")
        for name, url in (
            ("DINGMW_OAPI_URL", self.oapi_url),
            ("DINGMW_API_URL", self.api_url),
            ("DINGMW_LOGIN_URL", self.login_url),
            ("DINGMW_BASE_URL", self.base_url),
            ("DINGMW_HUB_URL", self.hub_url),
            ("DINGMW_LOGIN_SCRIPT_URL", self.login_script_url),
            ("DINGMW_JSAPI_SCRIPT_URL", self.jsapi_script_url),
        ):
            if url is not None:
                _check_url(name, url)
        if not math.isfinite(self.http_timeout) or self.http_timeout <= 0:
            raise ConfigError("DINGMW_HTTP_TIMEOUT must be a positive number of seconds")
        ids = [client.client_id for client in self.hub_clients]
        if len(ids) != len(set(ids)):
            raise ConfigError("DINGMW_HUB_CLIENTS: a client_id is registered twice")
        for name, ttl in (
            ("DINGMW_HUB_CODE_TTL", self.hub_code_ttl),
            ("DINGMW_HUB_TOKEN_TTL", self.hub_token_ttl),
            ("DINGMW_HUB_REFRESH_TTL", self.hub_refresh_ttl),
        ):
            if ttl <= 0:
                raise ConfigError(f"{name} must be a positive number of seconds")
        if not self.store_url.startswith(("memory://", "redis://", "rediss://", "unix://")):
            raise ConfigError(
                "DINGMW_STORE_URL must be memory://, redis://host:port/db, rediss://... or unix://..."
            )

    # Derived values -------------------------------------------------------

    @property
    def corp_credentials(self) -> tuple[str, str]:
        """The enterprise app used for `gettoken` and the lookups (defaults to the login app)."""
        if self.corp_app_key is not None and self.corp_app_secret is not None:
            return self.corp_app_key, self.corp_app_secret
        return self.app_key, self.app_secret

    @property
    def widget_script_url(self) -> str:
        """The QR widget script the login page loads."""
        if self.login_script_url:
            return self.login_script_url
        return DTFRAME_SCRIPT_URL if self.flow == "oauth2" else DDLOGIN_SCRIPT_URL

    @property
    def login_origin(self) -> str:
        """The origin whose `message` events the login page trusts."""
        parts = urlsplit(self.login_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def needs_corp_membership(self) -> bool:
        return bool(self.allowed_corp_ids or self.allowed_dept_ids)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every `DINGMW_*` variable from `environ` (default `os.environ`)."""
        env = os.environ if environ is None else environ
        return _from_env(cls, env)


def _check_url(name: str, url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{name} must be an absolute http(s) URL")
    if parts.query or parts.fragment:
        raise ConfigError(f"{name} must not have a query or fragment")


def _get(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def _required(env: Mapping[str, str], name: str) -> str:
    value = _get(env, name)
    if value is None:
        raise ConfigError(f"{name} is required")
    return value


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    value = _get(env, name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number of seconds") from None


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    value = _get(env, name)
    if value is None:
        return default
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds") from None


def _bool(env: Mapping[str, str], name: str) -> bool:
    value = (_get(env, name) or "").lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name} must be 1/true or 0/false")


def _list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    value = _get(env, name) or ""
    return tuple(item.strip() for item in value.split(",") if item.strip())


def _url(env: Mapping[str, str], name: str, default: str) -> str:
    return (_get(env, name) or default).rstrip("/")


def _from_env(cls: type[Settings], env: Mapping[str, str]) -> Settings:
    flow = (_get(env, "DINGMW_FLOW") or "oauth2").lower()
    if flow not in FLOWS:
        raise ConfigError(f"DINGMW_FLOW must be one of {', '.join(FLOWS)}")
    enrich = (_get(env, "DINGMW_ENRICH") or "none").lower()
    if enrich not in ("none", "detail"):
        raise ConfigError("DINGMW_ENRICH must be 'none' or 'detail'")
    secure = (_get(env, "DINGMW_COOKIE_SECURE") or "auto").lower()
    if secure not in ("auto", "true", "false"):
        raise ConfigError("DINGMW_COOKIE_SECURE must be auto, true or false")
    dept_ids: set[int] = set()
    for item in _list(env, "DINGMW_ALLOWED_DEPT_IDS"):
        try:
            dept_ids.add(int(item))
        except ValueError:
            raise ConfigError("DINGMW_ALLOWED_DEPT_IDS must be comma-separated numbers") from None
    base_url = _get(env, "DINGMW_BASE_URL")
    hub_url = _get(env, "DINGMW_HUB_URL")
    script = _get(env, "DINGMW_LOGIN_SCRIPT_URL")
    return cls(
        flow=flow,  # type: ignore[arg-type]  # checked against FLOWS above
        app_key=_required(env, "DINGMW_APP_KEY"),
        app_secret=_required(env, "DINGMW_APP_SECRET"),
        secret_keys=_list(env, "DINGMW_SECRET_KEY") or _raise("DINGMW_SECRET_KEY is required"),
        enrich=enrich,  # type: ignore[arg-type]  # checked above
        corp_app_key=_get(env, "DINGMW_CORP_APP_KEY"),
        corp_app_secret=_get(env, "DINGMW_CORP_APP_SECRET"),
        corp_id=_get(env, "DINGMW_CORP_ID"),
        path_prefix=_prefix(env),
        public_paths=_list(env, "DINGMW_PUBLIC_PATHS"),
        session_max_age=_int(env, "DINGMW_SESSION_MAX_AGE", 28800),
        cookie_name=_get(env, "DINGMW_COOKIE_NAME") or "dingmw_session",
        cookie_domain=_get(env, "DINGMW_COOKIE_DOMAIN"),
        cookie_secure=secure,  # type: ignore[arg-type]  # checked above
        allowed_corp_ids=frozenset(_list(env, "DINGMW_ALLOWED_CORP_IDS")),
        allowed_users=frozenset(_list(env, "DINGMW_ALLOWED_USERS")),
        allowed_dept_ids=frozenset(dept_ids),
        store_url=_get(env, "DINGMW_STORE_URL") or "memory://",
        base_url=base_url.rstrip("/") if base_url else None,
        trust_proxy=_bool(env, "DINGMW_TRUST_PROXY"),
        oapi_url=_url(env, "DINGMW_OAPI_URL", DEFAULT_OAPI_URL),
        api_url=_url(env, "DINGMW_API_URL", DEFAULT_API_URL),
        login_url=_url(env, "DINGMW_LOGIN_URL", DEFAULT_LOGIN_URL),
        hub_url=hub_url.rstrip("/") if hub_url else None,
        login_script_url=script,
        jsapi_script_url=_get(env, "DINGMW_JSAPI_SCRIPT_URL") or JSAPI_SCRIPT_URL,
        http_timeout=_float(env, "DINGMW_HTTP_TIMEOUT", 5.0),
        hub_clients=_hub_clients(env),
        hub_code_ttl=_int(env, "DINGMW_HUB_CODE_TTL", 60),
        hub_token_ttl=_int(env, "DINGMW_HUB_TOKEN_TTL", 7200),
        hub_refresh_ttl=_int(env, "DINGMW_HUB_REFRESH_TTL", 30 * 86400),
    )


def _prefix(env: Mapping[str, str]) -> str:
    value = _get(env, "DINGMW_PATH_PREFIX") or "/dingtalk"
    prefix = value.rstrip("/")
    if not prefix:
        raise ConfigError("DINGMW_PATH_PREFIX must not be '/': the app needs its own paths")
    return prefix


def _hub_clients(env: Mapping[str, str]) -> tuple[HubClient, ...]:
    """`DINGMW_HUB_CLIENTS`: a JSON list, or the path of a file holding one."""
    raw = _get(env, "DINGMW_HUB_CLIENTS")
    if raw is None:
        return ()
    if not raw.startswith("["):
        try:
            with open(raw, encoding="utf-8") as handle:  # a plain path is fine
                raw = handle.read()
        except OSError as exc:
            raise ConfigError(
                f"DINGMW_HUB_CLIENTS: cannot read the file ({exc.strerror or 'error'})"
            ) from None
    try:
        data = json.loads(raw)
    except ValueError:
        raise ConfigError("DINGMW_HUB_CLIENTS is not valid JSON") from None
    if not isinstance(data, list):
        raise ConfigError("DINGMW_HUB_CLIENTS must be a JSON list of clients")
    clients = []
    for item in data:
        if not isinstance(item, dict):
            raise ConfigError("DINGMW_HUB_CLIENTS: every client must be a JSON object")
        client_id, secret, urls = (
            item.get("client_id"),
            item.get("client_secret"),
            item.get("redirect_urls"),
        )
        if not isinstance(client_id, str) or not isinstance(secret, str):
            raise ConfigError(
                "DINGMW_HUB_CLIENTS: every client needs string client_id and client_secret"
            )
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise ConfigError(
                f"DINGMW_HUB_CLIENTS: redirect_urls of {client_id!r} must be a list of URLs"
            )
        clients.append(
            HubClient(client_id=client_id, client_secret=secret, redirect_urls=tuple(urls))
        )
    return tuple(clients)


def _raise(message: str) -> tuple[str, ...]:
    raise ConfigError(message)
