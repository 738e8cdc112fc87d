"""The hub's own settings: the sites it serves, how long its codes and tokens live, and the
keys its OpenID Connect face signs with. Declared like `Settings` (`dingmw.declare`).

The DingTalk login the hub runs for them is an ordinary `Settings`
(`DINGMW_APP_KEY`, `DINGMW_FLOW`, …); `create_app(settings, hub_settings)` takes both.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from .. import declare
from ..declare import Invalid, Items, Kind, Seconds, declared, setting
from ..errors import ConfigError

MIN_CLIENT_SECRET_LENGTH = 16
HUB_SERVER = "Hub: the hub itself"
# The OpenID Connect scopes the hub serves (see `hub.claims`).
SCOPES: tuple[str, ...] = ("openid", "profile", "email", "phone")

_CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")
_CLIENT_KEYS = frozenset(
    {
        "client_id",
        "client_secret",
        "redirect_urls",
        "public",
        "post_logout_redirect_urls",
        "scopes",
        "backchannel_logout_uri",
    }
)


def _check_url(client_id: str, what: str, url: str) -> None:
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed '['
        raise ConfigError(
            f"DINGMW_HUB_CLIENTS: a {what} of {client_id!r} is not a valid URL"
        ) from None
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
        raise ConfigError(
            f"DINGMW_HUB_CLIENTS: {what} {url!r} of {client_id!r} must be an absolute http(s) "
            "URL without a fragment"
        )


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class HubClient:
    """A site registered at the hub (`DINGMW_HUB_CLIENTS`).

    `public`: a client that cannot keep a secret (a single-page app, a CLI): it has no
    `client_secret` and must use PKCE (S256). `post_logout_redirect_urls`: where the hub's
    logout may send the browser back to. `scopes`: the OpenID Connect scopes it may get
    (empty: all the hub serves). `backchannel_logout_uri`: where the hub POSTs a logout token
    when a person logs out of the hub (OpenID Connect Back-Channel Logout 1.0).
    """

    client_id: str
    client_secret: str = dataclasses.field(default="", repr=False)
    redirect_urls: tuple[str, ...]
    public: bool = False
    post_logout_redirect_urls: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    backchannel_logout_uri: str | None = None

    def __post_init__(self) -> None:
        if not self.client_id or not _CLIENT_ID_RE.match(self.client_id):
            raise ConfigError(
                "DINGMW_HUB_CLIENTS: every client_id must be 1-128 letters, digits, '.', '_' or '-'"
            )
        if self.public and self.client_secret:
            raise ConfigError(
                f"DINGMW_HUB_CLIENTS: {self.client_id!r} is public, so it has no client_secret "
                "(it proves itself with PKCE instead)"
            )
        if not self.public and len(self.client_secret) < MIN_CLIENT_SECRET_LENGTH:
            raise ConfigError(
                f"DINGMW_HUB_CLIENTS: the client_secret of {self.client_id!r} must be at least "
                f"{MIN_CLIENT_SECRET_LENGTH} characters"
            )
        if not self.redirect_urls:
            raise ConfigError(f"DINGMW_HUB_CLIENTS: {self.client_id!r} needs redirect_urls")
        for url in self.redirect_urls:
            _check_url(self.client_id, "redirect URL", url)
        for url in self.post_logout_redirect_urls:
            _check_url(self.client_id, "post-logout redirect URL", url)
        if self.backchannel_logout_uri is not None:
            _check_url(self.client_id, "backchannel_logout_uri", self.backchannel_logout_uri)
            if urlsplit(self.backchannel_logout_uri).query:  # OIDC Back-Channel Logout §2.2
                raise ConfigError(
                    f"DINGMW_HUB_CLIENTS: the backchannel_logout_uri of {self.client_id!r} must "
                    "not have a query"
                )
        for scope in self.scopes:
            if scope not in SCOPES:
                raise ConfigError(
                    f"DINGMW_HUB_CLIENTS: scope {scope!r} of {self.client_id!r} is not one of "
                    f"{', '.join(SCOPES)}"
                )

    def allows(self, scope: str) -> bool:
        return scope == "openid" or not self.scopes or scope in self.scopes


def _strings(client_id: object, item: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = item.get(key, [])
    if not isinstance(value, list) or not all(isinstance(u, str) for u in value):
        raise Invalid(f": {key} of {client_id!r} must be a list of strings")
    return tuple(value)


def client_from_json(item: object) -> HubClient:
    if not isinstance(item, dict):
        raise Invalid(": every client must be a JSON object")
    client_id, secret = item.get("client_id"), item.get("client_secret", "")
    public = item.get("public", False)
    if not isinstance(public, bool):
        raise Invalid(f": public of {client_id!r} must be true or false")
    if not isinstance(client_id, str) or not isinstance(secret, str):
        raise Invalid(": every client needs string client_id and client_secret")
    if "redirect_urls" not in item:
        raise Invalid(f": redirect_urls of {client_id!r} must be a list of URLs")
    unknown = sorted(set(item) - _CLIENT_KEYS)
    if unknown:
        raise Invalid(
            f": {client_id!r} has unknown keys {', '.join(unknown)} (known: "
            f"{', '.join(sorted(_CLIENT_KEYS))})"
        )
    backchannel = item.get("backchannel_logout_uri")
    if backchannel is not None and not isinstance(backchannel, str):
        raise Invalid(f": backchannel_logout_uri of {client_id!r} must be a URL")
    return HubClient(
        client_id=client_id,
        client_secret=secret,
        redirect_urls=_strings(client_id, item, "redirect_urls"),
        public=public,
        post_logout_redirect_urls=_strings(client_id, item, "post_logout_redirect_urls"),
        scopes=_strings(client_id, item, "scopes"),
        backchannel_logout_uri=backchannel,
    )


class HubClients(Kind[tuple[HubClient, ...]]):
    """`DINGMW_HUB_CLIENTS`: a JSON list, or the path of a file holding one."""

    describe = (
        'a JSON list of `{"client_id", "client_secret", "redirect_urls"}` (optional: '
        '`"public"`, `"post_logout_redirect_urls"`, `"scopes"`, `"backchannel_logout_uri"`), '
        "a value starting with `[`, or the path of a file holding it; the secrets are never shown"
    )

    def parse(self, raw: str) -> tuple[HubClient, ...]:
        if not raw.startswith(("[", "{")):
            try:
                with open(raw, encoding="utf-8") as handle:  # a plain path is fine
                    raw = handle.read()
            except OSError as exc:
                raise Invalid(
                    f": cannot read the file ({exc.strerror or 'error'}); the value must be a "
                    "JSON list starting with '[' or the path of a file holding one"
                ) from None
        try:
            data = json.loads(raw)
        except ValueError:
            raise Invalid("is not valid JSON") from None
        if isinstance(data, dict):
            raise Invalid(
                "must be a JSON list of clients, not a single object: write [{...}] "
                "(one object per site)"
            )
        if not isinstance(data, list):
            raise Invalid("must be a JSON list of clients")
        return tuple(client_from_json(item) for item in data)

    def check(self, value: tuple[HubClient, ...]) -> str | None:
        ids = [client.client_id for client in value]
        if len(ids) != len(set(ids)):
            return ": a client_id is registered twice"
        return None

    def show(self, value: tuple[HubClient, ...]) -> str:
        return ", ".join(client.client_id for client in value) + " (secrets not shown)"


def _at_least_one(clients: tuple[HubClient, ...]) -> str | None:
    return None if clients else "must register at least one site for the hub"


def _keys_load(paths: tuple[str, ...]) -> str | None:
    from .keys import load_keys

    try:
        load_keys(paths)
    except ConfigError as exc:
        return f": {exc}"
    return None


@declared
class HubSettings:
    """The hub's server settings. Build them with `HubSettings.from_env()` or directly."""

    clients: tuple[HubClient, ...] = setting(
        env="DINGMW_HUB_CLIENTS",
        group=HUB_SERVER,
        kind=HubClients(),
        default=(),
        default_doc="none: the hub refuses to start",
        rule=_at_least_one,
        help="The sites the hub serves. Client ids 1–128 letters, digits, `.`, `_`, `-`, each "
        "once; secrets at least 16 characters (none for a `public` client); redirect URLs "
        "absolute http(s) without fragment, matched exactly "
        "([details](hub.md#2-the-sites-it-serves-dingmw_hub_clients))",
    )
    code_ttl: int = setting(
        env="DINGMW_HUB_CODE_TTL",
        group=HUB_SERVER,
        kind=Seconds(),
        default=60,
        help="Seconds a hub code may wait to be exchanged",
    )
    token_ttl: int = setting(
        env="DINGMW_HUB_TOKEN_TTL",
        group=HUB_SERVER,
        kind=Seconds(),
        default=7200,
        help="Seconds an access token (and an ID token) works (the token response's "
        "`expiry_in` / `expires_in`)",
    )
    refresh_ttl: int = setting(
        env="DINGMW_HUB_REFRESH_TTL",
        group=HUB_SERVER,
        kind=Seconds(),
        default=30 * 86400,
        help="Seconds a refresh token lives, and the hub remembers spent codes, spent refresh "
        "tokens and revoked logins (30 days by default). Keep it at least "
        "`DINGMW_HUB_TOKEN_TTL`",
    )
    oidc_key_files: tuple[str, ...] = setting(
        env="DINGMW_HUB_OIDC_KEY_FILE",
        group=HUB_SERVER,
        kind=Items(),
        default=(),
        default_doc="none: no OpenID Connect",
        rule=_keys_load,
        help="PEM private key file(s) the hub signs ID tokens with: RSA (2048 bits or more, "
        "RS256) or EC P-256 (ES256). Comma-separated for rotation: the first signs, all are "
        "published in the JWKS. Turns on the OpenID Connect face "
        "([details](hub.md#openid-connect)); needs `pip install 'dingmw[hub]'`",
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> HubSettings:
        """Read the hub's `DINGMW_HUB_*` variables from `environ` (default `os.environ`)."""
        return declare.from_env(cls, environ)
