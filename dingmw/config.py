"""Settings: every `DINGMW_*` variable, declared once and validated at start-up.

Each field of `Settings` is one `setting(...)` (see `dingmw.declare`): its
variable, kind, default, rule, help text and whether it is a secret. From it come
`Settings.from_env()` (the only place that reads the environment), the checks of
a directly built `Settings(...)`, `dingmw check` and the reference tables of
docs/configuration.md. A bad or missing value raises `ConfigError` naming the
variable; secrets are never echoed in a message or a `repr`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from . import declare
from .declare import (
    Choice,
    Duration,
    Invalid,
    Items,
    Kind,
    NameSet,
    NumberSet,
    Seconds,
    Url,
    cross_check,
    declared,
    setting,
)
from .hub.settings import HubClient as HubClient  # importable from here, as before
from .hub.settings import HubClients

if TYPE_CHECKING:
    from .providers.registry import LoginFlow

Flow = Literal["oauth2", "sns", "bycode", "hub"]
Enrich = Literal["none", "detail"]
CookieSecure = Literal["auto", "true", "false"]
LogFormat = Literal["text", "json"]
LoginPage = Literal["dingtalk", "qr"]

MIN_SECRET_KEY_LENGTH = 32

DEFAULT_OAPI_URL = "https://oapi.dingtalk.com"
DEFAULT_API_URL = "https://api.dingtalk.com"
DEFAULT_LOGIN_URL = "https://login.dingtalk.com"
# The official widget scripts (dingtalk-api.md §1.1 and §5).
DDLOGIN_SCRIPT_URL = "https://g.alicdn.com/dingding/dinglogin/0.0.5/ddLogin.js"
DTFRAME_SCRIPT_URL = "https://g.alicdn.com/dingding/h5-dingtalk-login/0.21.0/ddlogin.js"
JSAPI_SCRIPT_URL = "https://g.alicdn.com/dingding/dingtalk-jsapi/3.0.25/dingtalk.open.js"
# Subresource Integrity of the official scripts above, by URL: a page loads a script
# listed here only if its bytes have this hash. DINGMW_LOGIN_SCRIPT_INTEGRITY and
# DINGMW_JSAPI_SCRIPT_INTEGRITY pin the scripts a site chooses. None is pinned yet
# (docs/security.md, "No pinned hash for DingTalk's scripts out of the box").
PINNED_SCRIPT_INTEGRITY: dict[str, str] = {}

_COOKIE_NAME_RE = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_HEADER_NAME_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$")
_SRI = r"sha(?:256|384|512)-[A-Za-z0-9+/]+={0,2}"
_INTEGRITY_RE = re.compile(rf"^{_SRI}(?: {_SRI})*$")


# --- kinds particular to dingmw's settings ----------------------------------------------------


def env_text(value: object) -> str:
    """A framework setting (`app.config`, Django's settings) as its `DINGMW_*` text: a list
    or tuple as comma-separated values (`["k1", "k2"]` → `k1,k2`), anything else as `str`."""
    if isinstance(value, list | tuple):  # ordered: the first secret key seals
        return ",".join(map(str, value))
    return str(value)


def _flow_names() -> tuple[str, ...]:
    from .providers.registry import names

    return names()


def _login_flow(name: str) -> LoginFlow:
    from .providers.registry import login_flow

    return login_flow(name)


class PathPrefix(Kind[str]):
    describe = "a path starting with `/`; a trailing `/` is removed; `/` alone is refused"

    def parse(self, raw: str) -> str:
        prefix = raw.rstrip("/")
        if not prefix:
            raise Invalid("must not be '/': the app needs its own paths")
        return prefix

    def check(self, value: str) -> str | None:
        if not value.startswith("/") or value.endswith("/"):
            return "must start with '/' and not end with '/' (e.g. /dingtalk)"
        return None


class StoreUrl(Kind[str]):
    describe = (
        "`memory://`, `redis://…`, `rediss://…`, `unix://…`, `redis+sentinel://…` or "
        "`redis+cluster://…` (see below)"
    )

    def check(self, value: str) -> str | None:
        from .stores.urls import BadStoreURL, parse_store_url

        try:
            parse_store_url(value)
        except BadStoreURL as exc:
            return str(exc)
        return None

    def show(self, value: str) -> str:
        from .stores.urls import BadStoreURL, parse_store_url

        try:
            return parse_store_url(value).location
        except BadStoreURL:
            return "(not valid)"


def _every_key_long(keys: tuple[str, ...]) -> str | None:
    if any(len(key) < MIN_SECRET_KEY_LENGTH for key in keys):
        return (
            f": every key must be at least {MIN_SECRET_KEY_LENGTH} characters (generate one "
            "with: python -c 'import secrets; print(secrets.token_urlsafe(48))')"
        )
    return None


def _absolute_patterns(patterns: tuple[str, ...]) -> str | None:
    for pattern in patterns:
        if not pattern.startswith("/"):
            return f": {pattern!r} must start with '/'"
    return None


class SecondsOrZero(Seconds):
    """A whole number of seconds, 0 allowed (meaning "every time")."""

    describe = "a whole number of seconds, 0 or more"

    def check(self, value: int) -> str | None:
        if value < 0:
            return "must be 0 or a positive number of seconds"
        return None


def _header_names(names: tuple[str, ...]) -> str | None:
    for name in names:
        if not _HEADER_NAME_RE.match(name):
            return f": {name!r} is not a header name"
    return None


def _integrity(value: str | None) -> str | None:
    if value is not None and not _INTEGRITY_RE.match(value):
        return (
            "must be Subresource Integrity hashes (sha256-, sha384- or sha512- followed by "
            "base64), separated by spaces"
        )
    return None


def _audience(value: str | None) -> str | None:
    if value is not None and not value.strip():
        return "must not be empty"
    return None


def _site_name(name: str | None) -> str | None:
    if name is not None and len(name) > 80:
        return "must be at most 80 characters"
    return None


def _logo_url(url: str | None) -> str | None:
    if url is None:
        return None
    if url.startswith("/") and not url.startswith("//"):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return "must be an absolute http(s) URL or a path starting with '/'"
    return None


def _directory(path: str | None) -> str | None:
    if path is not None and not os.path.isdir(path):
        return "must be an existing directory"
    return None


def _cookie_name(name: str) -> str | None:
    if not _COOKIE_NAME_RE.match(name):
        return "may use only letters, digits, '_' and '-'"
    return None


def _metrics_need_prometheus(enabled: bool) -> str | None:
    import importlib.util

    if enabled and importlib.util.find_spec("prometheus_client") is None:
        return "=1 needs prometheus_client: pip install 'dingmw[metrics]'"
    return None


def _long_enough_token(token: str) -> str | None:
    if len(token) < 16:
        return "must be at least 16 characters"
    return None


CREDENTIALS = "Credentials"
FLOW = "Flow"
ROUTES = "Routes and public paths"
PAGES = "Pages"
SESSION = "Session and cookies"
ALLOW = "Allow-lists"
PUBLIC_URL = "Public URL and proxies"
ENDPOINTS = "DingTalk endpoints"
STORE = "Store"
TIMEOUTS = "Timeouts"
OPERATIONS = "Operations"
HUB_SITE = "Hub: a site"
HUB_SERVER = "Hub: the hub itself"


@declared
class Settings:
    """Validated configuration. Build it with `Settings.from_env()` or directly."""

    app_key: str = setting(
        env="DINGMW_APP_KEY",
        group=CREDENTIALS,
        help="The login app's key: AppKey / Client ID (`oauth2`), appId (`sns`, `bycode`), "
        "this site's client id at the hub (`hub`)",
    )
    app_secret: str = setting(
        env="DINGMW_APP_SECRET",
        group=CREDENTIALS,
        secret=True,
        help="The login app's secret: AppSecret / Client Secret / appSecret (`hub`: this "
        "site's client secret at the hub)",
    )
    secret_keys: tuple[str, ...] = setting(
        env="DINGMW_SECRET_KEY",
        group=CREDENTIALS,
        kind=Items(),
        secret=True,
        rule=_every_key_long,
        help="Key(s) that sign dingmw's cookies (session and login state). Comma-separated: "
        "the first signs, all verify (see [rotation](#rotating-dingmw_secret_key)). Each at "
        f"least {MIN_SECRET_KEY_LENGTH} characters",
    )
    flow: Flow = setting(
        env="DINGMW_FLOW",
        group=FLOW,
        kind=Choice(among=_flow_names),
        default="oauth2",
        help="The login flow: `oauth2` (DingTalk's current login, recommended), `sns` (legacy "
        "QR with persistent code), `bycode` (legacy QR with the signed "
        "`sns/getuserinfo_bycode`), `hub` (through a dingmw hub, see [The hub](hub.md)). "
        "See [Login flows](flows.md)",
    )
    enrich: Enrich = setting(
        env="DINGMW_ENRICH",
        group=FLOW,
        kind=Choice("none", "detail"),
        default="none",
        help="`none`, or `detail`: after the login, look up the person in your organisation "
        "(`gettoken` → `topapi/user/getbyunionid` → `topapi/v2/user/get`) to add `userid`, "
        "`name`, `email`, `mobile`, `title`, `job_number`, `dept_ids`, `avatar_url`",
    )
    login_page: LoginPage | None = setting(
        env="DINGMW_LOGIN_PAGE",
        group=FLOW,
        kind=Choice("dingtalk", "qr"),
        default=None,
        default_doc="`qr` (the hub: `dingtalk`)",
        help="Which login page a person sees: `qr`, dingmw's own page with DingTalk's embedded "
        "QR code; or `dingtalk`, a `302` straight to DingTalk's own login page (`oauth2`: "
        "`{DINGMW_LOGIN_URL}/oauth2/auth`; `sns`, `bycode`: `{DINGMW_OAPI_URL}/connect/qrconnect`"
        "), where people can also sign in without scanning, and which works for clients that run "
        "no JavaScript. Inside the DingTalk client (with `DINGMW_CORP_ID`) dingmw's page is shown "
        "either way, for the silent login. With `DINGMW_FLOW=hub` a site always sends the "
        "browser straight to the hub",
    )
    corp_app_key: str | None = setting(
        env="DINGMW_CORP_APP_KEY",
        group=FLOW,
        default=None,
        default_doc="the login app's key",
        help="The enterprise internal app (企业内部应用) used for `gettoken` and the directory "
        "lookups (enrichment and in-client login). Set together with `DINGMW_CORP_APP_SECRET`",
    )
    corp_app_secret: str | None = setting(
        env="DINGMW_CORP_APP_SECRET",
        group=FLOW,
        default=None,
        secret=True,
        default_doc="the login app's secret",
        help="The secret of `DINGMW_CORP_APP_KEY`",
    )
    corp_id: str | None = setting(
        env="DINGMW_CORP_ID",
        group=FLOW,
        default=None,
        default_doc="off",
        help="Your organisation's corpId (starts with `ding`). Turns on silent login inside the "
        "DingTalk client, and is recorded as the person's `corp_id` after enrichment",
    )
    path_prefix: str = setting(
        env="DINGMW_PATH_PREFIX",
        group=ROUTES,
        kind=PathPrefix(),
        default="/dingtalk",
        help="Where dingmw's own routes live (`/login`, `/callback`, `/logout`, `/me`, `/auth`, "
        "`/healthz`, `/readyz` below it)",
    )
    public_paths: tuple[str, ...] = setting(
        env="DINGMW_PUBLIC_PATHS",
        group=ROUTES,
        kind=Items(),
        default=(),
        rule=_absolute_patterns,
        help="Paths that need no login, each starting with `/` (see the patterns below)",
    )
    site_name: str | None = setting(
        env="DINGMW_SITE_NAME",
        group=PAGES,
        default=None,
        default_doc="none",
        rule=_site_name,
        help="The site's name, shown on the login, logout and error pages (in the title and "
        "above the QR code), e.g. `报销系统` or `Expenses`; at most 80 characters",
    )
    site_logo_url: str | None = setting(
        env="DINGMW_SITE_LOGO_URL",
        group=PAGES,
        default=None,
        default_doc="none",
        rule=_logo_url,
        help="A logo shown above the site's name on those pages: an absolute http(s) URL, or a "
        "path on this site (`/static/logo.png`, which must then be in `DINGMW_PUBLIC_PATHS`: "
        "the login page is seen before the login)",
    )
    templates_dir: str | None = setting(
        env="DINGMW_TEMPLATES_DIR",
        group=PAGES,
        default=None,
        default_doc="none",
        rule=_directory,
        help="A directory of Jinja2 templates that replace dingmw's own (`base.html`, "
        "`login.html`, `error.html`, `logout.html`, and the hub's `hub_logout.html`), looked up "
        "first; dingmw's stay reachable as "
        "`dingmw/<name>` for `{% extends %}` (docs/customising.md lists the blocks)",
    )
    session_max_age: int = setting(
        env="DINGMW_SESSION_MAX_AGE",
        group=SESSION,
        kind=Seconds(),
        default=28800,
        help="Seconds a login lasts (8 hours by default). The expiry is fixed at login; using "
        "the site does not extend it",
    )
    state_max_age: int = setting(
        group=SESSION,
        kind=Seconds(),
        default=600,
        help="seconds a login may take from the login page to the callback",
    )
    cookie_name: str = setting(
        env="DINGMW_COOKIE_NAME",
        group=SESSION,
        default="dingmw_session",
        rule=_cookie_name,
        help="Name of the session cookie (1–64 letters, digits, `_`, `-`). The login-state "
        "cookies are named `<name>_state_<16 hex digits>`. A `__Host-` or `__Secure-` name is "
        "always `Secure`; with `__Host-` the login-state cookies are `__Secure-…_state_…` "
        "(they live under the prefix path)",
    )
    cookie_domain: str | None = setting(
        env="DINGMW_COOKIE_DOMAIN",
        group=SESSION,
        default=None,
        default_doc="host-only",
        help="`Domain` attribute of the session cookie, to share one login between sub-domains "
        "(e.g. `example.com`). The login-state cookies are always host-only",
    )
    cookie_secure: CookieSecure = setting(
        env="DINGMW_COOKIE_SECURE",
        group=SESSION,
        kind=Choice("auto", "true", "false"),
        default="auto",
        help="`auto`: `Secure` when the browser uses https (from `DINGMW_BASE_URL` if set, else "
        "`X-Forwarded-Proto` with `DINGMW_TRUST_PROXY=1`, else the request's scheme); `true`: "
        "always; `false`: never",
    )
    session_audience: str | None = setting(
        env="DINGMW_SESSION_AUDIENCE",
        group=SESSION,
        default=None,
        rule=_audience,
        default_doc="this site alone (its app key, `DINGMW_BASE_URL` and cookie name)",
        help="Which sites accept this site's sessions and login states. Sites that set the same "
        "value (and share `DINGMW_SECRET_KEY`) share logins, on purpose; any other site refuses "
        'them. "Log out everywhere" reaches every site of the audience that shares the store',
    )
    session_recheck: int = setting(
        env="DINGMW_SESSION_RECHECK",
        group=SESSION,
        kind=SecondsOrZero(),
        default=60,
        help="Seconds between re-checks of a verified session against the allow-lists and the "
        "store's revocations (logout, log out everywhere), per session and process. A session "
        "is also checked when a process first sees it. `0`: on every request",
    )
    strip_headers: tuple[str, ...] = setting(
        env="DINGMW_STRIP_HEADERS",
        group=SESSION,
        kind=Items(),
        default=(),
        rule=_header_names,
        default_doc="none beyond the built-in list",
        help="More request headers to remove before the app sees a request, besides "
        "`X-DingTalk-*`, `Remote-User`, `X-Remote-User`, `X-Forwarded-User`, "
        "`X-Forwarded-Email` and `X-Forwarded-Preferred-Username` (e.g. `X-Auth-Request-User`)",
    )
    allowed_corp_ids: frozenset[str] = setting(
        env="DINGMW_ALLOWED_CORP_IDS",
        group=ALLOW,
        kind=NameSet(),
        default=frozenset(),
        default_doc="allow all",
        help="corpIds; the person's `corp_id` must be one of them. With `DINGMW_FLOW=sns` or "
        "`bycode` it needs `DINGMW_ENRICH=detail` and `DINGMW_CORP_ID` (see below)",
    )
    allowed_users: frozenset[str] = setting(
        env="DINGMW_ALLOWED_USERS",
        group=ALLOW,
        kind=NameSet(),
        default=frozenset(),
        default_doc="allow all",
        help="userids or unionids; the person's `userid` or `unionid` must be listed",
    )
    allowed_dept_ids: frozenset[int] = setting(
        env="DINGMW_ALLOWED_DEPT_IDS",
        group=ALLOW,
        kind=NumberSet(),
        default=frozenset(),
        default_doc="allow all",
        help="department ids; one of the person's `dept_ids` must be listed. Needs "
        "`DINGMW_ENRICH=detail` (except with `DINGMW_FLOW=hub`)",
    )
    store_url: str = setting(
        env="DINGMW_STORE_URL",
        group=STORE,
        kind=StoreUrl(),
        default="memory://",
        help="Where dingmw keeps its small shared state: used login states (replay "
        "protection), cached DingTalk app tokens, and the hub's codes and tokens. `memory://` "
        "keeps it in the process; Redis shares it between instances. Its password is never "
        "shown",
    )
    base_url: str | None = setting(
        env="DINGMW_BASE_URL",
        group=PUBLIC_URL,
        kind=Url(),
        default=None,
        default_doc="derived from each request",
        help="The public base URL of the site, e.g. `https://intra.example.com` or "
        "`https://example.com/app`. dingmw builds `redirect_uri` from it "
        "(`<base>/dingtalk/callback`), and with `DINGMW_COOKIE_SECURE=auto` it decides `Secure`",
    )
    trust_proxy: bool = setting(
        env="DINGMW_TRUST_PROXY",
        group=PUBLIC_URL,
        kind=declare.Flag(),
        default=False,
        help="`1`: when `DINGMW_BASE_URL` is not set, use `X-Forwarded-Proto` and "
        "`X-Forwarded-Host` (first value of each) to build `redirect_uri`, and "
        "`X-Forwarded-Proto` for `Secure`. In every case, use `X-Forwarded-Prefix` as the root "
        "path of every URL and cookie path dingmw makes "
        "([Deployment](deployment.md#under-a-sub-path)). Set it only behind a proxy that "
        "overwrites these headers",
    )
    oapi_url: str = setting(
        env="DINGMW_OAPI_URL",
        group=ENDPOINTS,
        kind=Url(),
        default=DEFAULT_OAPI_URL,
        help="the legacy API host (`gettoken`, `sns/*`, `topapi/*`, and the `sns_authorize` page)",
    )
    api_url: str = setting(
        env="DINGMW_API_URL",
        group=ENDPOINTS,
        kind=Url(),
        default=DEFAULT_API_URL,
        help="the new API host (`/v1.0/...`)",
    )
    login_url: str = setting(
        env="DINGMW_LOGIN_URL",
        group=ENDPOINTS,
        kind=Url(),
        default=DEFAULT_LOGIN_URL,
        help="the login host (`/oauth2/auth`, the QR frames). Its origin is the only origin "
        "whose `message` events the login page accepts",
    )
    hub_url: str | None = setting(
        env="DINGMW_HUB_URL",
        group=HUB_SITE,
        kind=Url(),
        default=None,
        help="The hub's public URL, e.g. `https://sso.example.com` (may include a path). The "
        "site calls `{DINGMW_HUB_URL}/dingtalk/authorize`, `/dingtalk/token` and "
        "`/dingtalk/userinfo`. Required with `DINGMW_FLOW=hub`",
    )
    login_script_url: str | None = setting(
        env="DINGMW_LOGIN_SCRIPT_URL",
        group=ENDPOINTS,
        kind=Url(),
        default=None,
        default_doc=f"`oauth2`: `{DTFRAME_SCRIPT_URL}` (DTFrameLogin); `sns`, `bycode`: "
        f"`{DDLOGIN_SCRIPT_URL}` (DDLogin)",
        help="the QR widget script the login page loads",
    )
    jsapi_script_url: str = setting(
        env="DINGMW_JSAPI_SCRIPT_URL",
        group=ENDPOINTS,
        kind=Url(),
        default=JSAPI_SCRIPT_URL,
        help="the DingTalk JSAPI script the login page loads inside the DingTalk client (with "
        "`DINGMW_CORP_ID`)",
    )
    login_script_integrity: str | None = setting(
        env="DINGMW_LOGIN_SCRIPT_INTEGRITY",
        group=ENDPOINTS,
        kind=declare.Text(),
        default=None,
        rule=_integrity,
        default_doc="none: dingmw pins no hash, so the script loads without SRI unless this is "
        "set ([how to pin it](security.md#injected-script-clickjacking-and-caching))",
        help="Subresource Integrity of the QR widget script (`sha384-…`): the browser runs the "
        "script only if its bytes match",
    )
    jsapi_script_integrity: str | None = setting(
        env="DINGMW_JSAPI_SCRIPT_INTEGRITY",
        group=ENDPOINTS,
        kind=declare.Text(),
        default=None,
        rule=_integrity,
        default_doc="none: dingmw pins no hash, so the script loads without SRI unless this is "
        "set ([how to pin it](security.md#injected-script-clickjacking-and-caching))",
        help="Subresource Integrity of the DingTalk JSAPI script (`sha384-…`)",
    )
    http_timeout: float = setting(
        env="DINGMW_HTTP_TIMEOUT",
        group=TIMEOUTS,
        kind=Duration(),
        default=5.0,
        help="Seconds for each call to DingTalk (connect, read, write and pool wait each). A "
        "call that takes longer fails the login with a `502` page (`upstream_timeout`)",
    )
    metrics: bool = setting(
        env="DINGMW_METRICS",
        group=OPERATIONS,
        kind=declare.Flag(),
        default=False,
        rule=_metrics_need_prometheus,
        help="`1`: count logins, DingTalk calls, store operations, hub grants and revoked "
        "sessions, and serve them as Prometheus text at `/dingtalk/metrics` "
        "([Metrics](deployment.md#metrics)). Needs `pip install 'dingmw[metrics]'`",
    )
    metrics_token: str | None = setting(
        env="DINGMW_METRICS_TOKEN",
        group=OPERATIONS,
        default=None,
        secret=True,
        rule=_long_enough_token,
        default_doc="none: `/dingtalk/metrics` is open",
        help="When set, `/dingtalk/metrics` answers only `Authorization: Bearer <token>` (at "
        "least 16 characters; the scheme in any case); anything else gets `401`",
    )
    log_format: LogFormat = setting(
        env="DINGMW_LOG_FORMAT",
        group=OPERATIONS,
        kind=Choice("text", "json"),
        default="text",
        help="`text`: dingmw's log records go to the `logging` configuration of your application "
        "as usual; `json`: the `dingmw` logger writes one JSON object per line to stderr "
        "([Structured logs](deployment.md#structured-logs))",
    )
    # The hub's server settings are `dingmw.hub.HubSettings` (`DINGMW_HUB_*`). These fields
    # remain so that `create_app(Settings(..., hub_clients=...))` keeps working.
    hub_clients: tuple[HubClient, ...] = setting(
        group=HUB_SERVER,
        kind=HubClients(),
        default=(),
        help="older spelling of `HubSettings(clients=…)`, read by `create_app(settings)`",
    )
    hub_code_ttl: int = setting(
        group=HUB_SERVER,
        kind=Seconds(),
        default=60,
        help="older spelling of `HubSettings(code_ttl=…)`",
    )
    hub_token_ttl: int = setting(
        group=HUB_SERVER,
        kind=Seconds(),
        default=7200,
        help="older spelling of `HubSettings(token_ttl=…)`",
    )
    hub_refresh_ttl: int = setting(
        group=HUB_SERVER,
        kind=Seconds(),
        default=30 * 86400,
        help="older spelling of `HubSettings(refresh_ttl=…)`",
    )

    # Rules over several settings -------------------------------------------

    @cross_check("corp_app_key", "corp_app_secret")
    def _corp_app_pair(self) -> str | None:
        if (self.corp_app_key is None) != (self.corp_app_secret is None):
            return "DINGMW_CORP_APP_KEY and DINGMW_CORP_APP_SECRET must be set together"
        return None

    @cross_check("allowed_dept_ids", "enrich", "flow")
    def _departments_need_detail(self) -> str | None:
        if (
            self.allowed_dept_ids
            and self.enrich != "detail"
            and not _login_flow(self.flow).gives_departments
        ):
            return (
                "DINGMW_ALLOWED_DEPT_IDS needs DINGMW_ENRICH=detail (departments come from "
                "the user's detail)"
            )
        return None

    @cross_check("allowed_corp_ids", "flow", "enrich", "corp_id")
    def _corp_ids_need_membership(self) -> str | None:
        if (
            self.allowed_corp_ids
            and not _login_flow(self.flow).gives_corp
            and not (self.enrich == "detail" and self.corp_id)
        ):
            return (
                f"DINGMW_ALLOWED_CORP_IDS needs DINGMW_ENRICH=detail and DINGMW_CORP_ID with "
                f"DINGMW_FLOW={self.flow} (that flow does not say which organisation a person "
                "belongs to; members found by the lookup belong to DINGMW_CORP_ID)"
            )
        return None

    @cross_check("flow", "hub_url", "enrich", "corp_id", "corp_app_key", "corp_app_secret")
    def _rules_of_the_flow(self) -> str | None:
        from .providers.registry import rules

        return "; ".join(rules(self)) or None

    @cross_check("cookie_name", "cookie_secure", "cookie_domain")
    def _cookie_prefix(self) -> str | None:
        if self.cookie_name.startswith(("__Host-", "__Secure-")) and self.cookie_secure == "false":
            return (
                "DINGMW_COOKIE_NAME: a __Host- or __Secure- cookie is always Secure; it cannot be "
                "used with DINGMW_COOKIE_SECURE=false"
            )
        if self.cookie_name.startswith("__Host-") and self.cookie_domain:
            return (
                "DINGMW_COOKIE_NAME: a __Host- cookie cannot have a domain; use a __Secure- name "
                "to share it with DINGMW_COOKIE_DOMAIN"
            )
        return None

    # Derived values -------------------------------------------------------

    def script_integrity(self, url: str | None) -> str | None:
        """The Subresource Integrity of a script the pages load (None: not pinned)."""
        if url is None:
            return None
        if url == self.widget_script_url and self.login_script_integrity:
            return self.login_script_integrity
        if url == self.jsapi_script_url and self.jsapi_script_integrity:
            return self.jsapi_script_integrity
        return PINNED_SCRIPT_INTEGRITY.get(url)

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
        return _login_flow(self.flow).widget_script or ""

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
        return declare.from_env(cls, environ)
