"""The hub's OpenID Connect face (and OAuth 2.0 with the standard names), in process:
discovery, JWKS, the code flow with PKCE, both secret-based client authentications and public
clients, ID tokens, userinfo claims, refresh, errors (RFC 6749 §5.2, §4.1.2.1), logout that
revokes what the session got, RP-initiated logout and back-channel logout tokens."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from dingmw import ConfigError, Identity
from dingmw.config import DEFAULT_LOGIN_URL
from dingmw.hub import Hub, HubClient, HubSettings, create_app
from dingmw.hub.tokens import pkce_s256
from dingmw.stores.memory import MemoryStore
from dingmw.testing import DEFAULT_CORP_ID, LISI, ZHANGSAN, FakeDingTalk

from .hub_keys import write_keys
from .support import HTML, TestClient, make_settings

HUB = "http://hub.test"
SAME_ORIGIN = {"sec-fetch-site": "same-origin", "origin": HUB}
RP = "http://rp.test"
RP_SECRET = "rp-secret-0123456789abcdef"
MAIL_SECRET = "mail-secret-0123456789abc"
CLIENTS = (
    HubClient(
        client_id="rp",
        client_secret=RP_SECRET,
        redirect_urls=(f"{RP}/cb",),
        post_logout_redirect_urls=(f"{RP}/bye",),
        backchannel_logout_uri=f"{RP}/backchannel",
    ),
    HubClient(client_id="spa", public=True, redirect_urls=(f"{RP}/spa",)),
    HubClient(
        client_id="mail",
        client_secret=MAIL_SECRET,
        redirect_urls=(f"{RP}/mail",),
        scopes=("email",),
    ),
)


NOW = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


class Router(httpx.AsyncBaseTransport):
    """The fake DingTalk, and the relying party's back-channel endpoint (recorded)."""

    def __init__(self, fake: FakeDingTalk) -> None:
        self.fake = fake.transport()
        self.received: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "rp.test":
            await request.aread()
            self.received.append(request)
            return httpx.Response(200)
        return await self.fake.handle_async_request(request)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return write_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def router(fake: FakeDingTalk) -> Router:
    return Router(fake)


def make_hub(
    keys: dict[str, str], router: Router, clock: Clock, *key_names: str, **settings: Any
) -> Hub:
    hub_settings = HubSettings(
        clients=CLIENTS, oidc_key_files=tuple(keys[k] for k in key_names or ("rsa", "ec"))
    )
    store = MemoryStore(timer=clock).aio()
    site = make_settings("oauth2", enrich="detail", corp_id=DEFAULT_CORP_ID, **settings)
    return create_app(site, hub_settings, transport=router, store=store, clock=clock)


@pytest.fixture
def hub(keys: dict[str, str], router: Router, clock: Clock) -> Hub:
    return make_hub(keys, router, clock)


@pytest.fixture
def browser(hub: Hub) -> Iterator[TestClient]:
    with TestClient(hub, base_url=HUB, follow_redirects=False) as client:
        yield client


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    return verifier, pkce_s256(verifier)


def authorize(
    browser: httpx.Client,
    fake: FakeDingTalk,
    *,
    unionid: str = ZHANGSAN.unionid,
    **params: str,
) -> httpx.URL:
    """The standard authorization request; the URL the hub finally sends the browser to."""
    query = {
        "client_id": "rp",
        "redirect_uri": f"{RP}/cb",
        "response_type": "code",
        "scope": "openid profile email",
        "state": "rp-state",
        "nonce": "rp-nonce",
        **params,
    }
    response = browser.get("/dingtalk/authorize", params=query, headers=HTML)
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    if location.startswith(DEFAULT_LOGIN_URL):  # no hub session: DingTalk's login page
        response = browser.get(fake.scan(location, unionid), headers=HTML)
        assert response.status_code == 302, response.text
        location = response.headers["location"]
    return httpx.URL(location)


def token(browser: httpx.Client, data: dict[str, str], **headers: str) -> httpx.Response:
    return browser.post("/dingtalk/token", data=data, headers=headers)


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def code_flow(
    browser: httpx.Client, fake: FakeDingTalk, **params: str
) -> tuple[dict[str, Any], str]:
    """A whole login with PKCE and client_secret_basic; (token response, verifier)."""
    verifier, challenge = pkce()
    back = authorize(
        browser, fake, code_challenge=challenge, code_challenge_method="S256", **params
    )
    response = token(
        browser,
        {
            "grant_type": "authorization_code",
            "code": back.params["code"],
            "redirect_uri": f"{RP}/cb",
            "code_verifier": verifier,
        },
        authorization=basic("rp", RP_SECRET),
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body, verifier


def id_claims(browser: httpx.Client, id_token: str, **expected: Any) -> dict[str, Any]:
    """The ID token's claims, verified with the published JWKS (not the hub's own code)."""
    jwks = KeySet.import_key_set(browser.get("/dingtalk/jwks").json())
    decoded = jwt.decode(id_token, jwks, algorithms=["RS256", "ES256"])
    jwt.JWTClaimsRegistry(now=int(NOW) + 1).validate(decoded.claims)  # exp, iat, nbf
    for name, value in expected.items():
        assert decoded.claims.get(name) == value, name
    return dict(decoded.claims)


# Discovery and keys ---------------------------------------------------------------------------


def test_discovery(browser: httpx.Client) -> None:
    response = browser.get("/.well-known/openid-configuration")
    assert response.status_code == 200
    doc = response.json()
    assert doc["issuer"] == HUB
    assert doc["authorization_endpoint"] == f"{HUB}/dingtalk/authorize"
    assert doc["token_endpoint"] == f"{HUB}/dingtalk/token"
    assert doc["userinfo_endpoint"] == f"{HUB}/dingtalk/userinfo"
    assert doc["jwks_uri"] == f"{HUB}/dingtalk/jwks"
    assert doc["end_session_endpoint"] == f"{HUB}/dingtalk/logout"
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert {"client_secret_basic", "client_secret_post"} <= set(
        doc["token_endpoint_auth_methods_supported"]
    )
    assert doc["response_types_supported"] == ["code"]
    assert doc["id_token_signing_alg_values_supported"] == ["ES256", "RS256"]
    assert {"openid", "profile", "email"} <= set(doc["scopes_supported"])
    assert browser.get("/.well-known/oauth-authorization-server").json() == doc


def test_discovery_follows_the_base_url(keys: dict[str, str], router: Router, clock: Clock) -> None:
    hub = make_hub(keys, router, clock, base_url="https://sso.example.com/auth")
    with TestClient(hub, base_url=HUB) as browser:
        doc = browser.get("/.well-known/openid-configuration").json()
    assert doc["issuer"] == "https://sso.example.com/auth"
    assert doc["token_endpoint"] == "https://sso.example.com/auth/dingtalk/token"


def test_without_keys_there_is_no_openid_connect(fake: FakeDingTalk, clock: Clock) -> None:
    hub = create_app(
        make_settings("oauth2"), HubSettings(clients=CLIENTS), transport=fake.transport()
    )
    with TestClient(hub, base_url=HUB, follow_redirects=False) as browser:
        assert browser.get("/.well-known/openid-configuration").status_code == 404
        assert browser.get("/dingtalk/jwks").status_code == 404
        refused = authorize(browser, fake)
    assert refused.params["error"] == "invalid_scope"
    assert "DINGMW_HUB_OIDC_KEY_FILE" in refused.params["error_description"]


def test_jwks_publishes_every_key_and_the_first_signs(
    browser: httpx.Client, fake: FakeDingTalk
) -> None:
    jwks = browser.get("/dingtalk/jwks").json()
    assert [(k["kty"], k["alg"], k["use"]) for k in jwks["keys"]] == [
        ("RSA", "RS256", "sig"),
        ("EC", "ES256", "sig"),
    ]
    assert all("d" not in k for k in jwks["keys"])  # public parts only
    body, _ = code_flow(browser, fake)
    header = json.loads(base64.urlsafe_b64decode(body["id_token"].split(".")[0] + "=="))
    assert header["kid"] == jwks["keys"][0]["kid"]
    assert header["alg"] == "RS256"


def test_rotation_old_tokens_still_verify(
    keys: dict[str, str], router: Router, clock: Clock, fake: FakeDingTalk
) -> None:
    """The operator puts a new key first and keeps the old one: ID tokens signed before still
    verify against the JWKS, new ones are signed with the new key."""
    old = make_hub(keys, router, clock, "rsa")
    with TestClient(old, base_url=HUB, follow_redirects=False) as browser:
        before, _ = code_flow(browser, fake)
    rotated = make_hub(keys, router, clock, "ec", "rsa")
    with TestClient(rotated, base_url=HUB, follow_redirects=False) as browser:
        claims = id_claims(browser, before["id_token"], iss=HUB, aud="rp")
        assert claims["sub"] == "zhangsan"
        after, _ = code_flow(browser, fake)
        kid = json.loads(base64.urlsafe_b64decode(after["id_token"].split(".")[0] + "=="))["kid"]
        assert kid == browser.get("/dingtalk/jwks").json()["keys"][0]["kid"]
        assert browser.get("/dingtalk/jwks").json()["keys"][0]["kty"] == "EC"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("rsa1024", "must have at least 2048 bits"),
        ("p384", r"must be RSA \(2048 bits or more\) or EC P-256"),
        ("public", "holds a public key"),
    ],
)
def test_unusable_keys_are_refused_at_start(keys: dict[str, str], name: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        HubSettings.from_env(
            {
                "DINGMW_HUB_CLIENTS": json.dumps(
                    [{"client_id": "a", "client_secret": RP_SECRET, "redirect_urls": [f"{RP}/cb"]}]
                ),
                "DINGMW_HUB_OIDC_KEY_FILE": keys[name],
            }
        )
    assert str(info.value).startswith("DINGMW_HUB_OIDC_KEY_FILE:")


def test_key_files_from_env(keys: dict[str, str]) -> None:
    env = {
        "DINGMW_HUB_CLIENTS": json.dumps(
            [{"client_id": "a", "client_secret": RP_SECRET, "redirect_urls": [f"{RP}/cb"]}]
        ),
        "DINGMW_HUB_OIDC_KEY_FILE": f"{keys['ec']}, {keys['rsa']}",
    }
    assert HubSettings.from_env(env).oidc_key_files == (keys["ec"], keys["rsa"])
    with pytest.raises(ConfigError, match="cannot read the key file"):
        HubSettings.from_env({**env, "DINGMW_HUB_OIDC_KEY_FILE": "/no/such.pem"})


# The code flow ---------------------------------------------------------------------------


def test_code_flow_with_pkce_and_client_secret_basic(
    browser: httpx.Client, fake: FakeDingTalk
) -> None:
    verifier, challenge = pkce()
    back = authorize(browser, fake, code_challenge=challenge, code_challenge_method="S256")
    assert f"{back.scheme}://{back.host}{back.path}" == f"{RP}/cb"
    assert back.params["state"] == "rp-state"
    assert back.params["iss"] == HUB  # RFC 9207
    response = token(
        browser,
        {
            "grant_type": "authorization_code",
            "code": back.params["code"],
            "redirect_uri": f"{RP}/cb",
            "code_verifier": verifier,
        },
        authorization=basic("rp", RP_SECRET),
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {
        "access_token",
        "token_type",
        "expires_in",
        "refresh_token",
        "scope",
        "id_token",
    }
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 7200
    assert body["scope"] == "openid profile email"
    claims = id_claims(browser, body["id_token"], iss=HUB, aud="rp", nonce="rp-nonce")
    assert claims["sub"] == "zhangsan"  # the userid (enrichment), stable per person
    assert claims["unionid"] == ZHANGSAN.unionid
    assert claims["name"] == ZHANGSAN.name
    assert claims["email"] == ZHANGSAN.org_email
    assert claims["exp"] - claims["iat"] == 7200
    assert claims["auth_time"] == claims["iat"]
    assert claims["sid"]


def test_client_secret_post(browser: httpx.Client, fake: FakeDingTalk) -> None:
    back = authorize(browser, fake)
    response = token(
        browser,
        {
            "grant_type": "authorization_code",
            "code": back.params["code"],
            "redirect_uri": f"{RP}/cb",
            "client_id": "rp",
            "client_secret": RP_SECRET,
        },
    )
    assert response.status_code == 200, response.text
    assert "id_token" in response.json()


def test_a_public_client_uses_pkce_and_no_secret(browser: httpx.Client, fake: FakeDingTalk) -> None:
    spa = {"client_id": "spa", "redirect_uri": f"{RP}/spa"}
    refused = authorize(browser, fake, **spa)
    assert refused.params["error"] == "invalid_request"
    assert "PKCE" in refused.params["error_description"]
    verifier, challenge = pkce()
    back = authorize(browser, fake, code_challenge=challenge, code_challenge_method="S256", **spa)
    grant = {
        "grant_type": "authorization_code",
        "code": back.params["code"],
        "redirect_uri": f"{RP}/spa",
    }
    without = token(browser, {**grant, "client_id": "spa"})
    assert without.status_code == 400
    assert without.json()["error"] == "invalid_grant"  # the verifier was required; code spent
    back = authorize(browser, fake, code_challenge=challenge, code_challenge_method="S256", **spa)
    grant["code"] = back.params["code"]
    response = token(browser, {**grant, "client_id": "spa", "code_verifier": verifier})
    assert response.status_code == 200, response.text
    assert id_claims(browser, response.json()["id_token"], aud="spa")["sub"] == "zhangsan"


def test_a_public_client_cannot_skip_pkce_with_the_seed_dialect(
    browser: httpx.Client, fake: FakeDingTalk
) -> None:
    """The seed's dialect has no PKCE: a public client (no secret) asking in it is refused on
    the hub (never sent back with a code anyone who sees it could redeem)."""
    response = browser.get(
        "/dingtalk/authorize",
        params={"client_id": "spa", "redirect_url": f"{RP}/spa", "state": "s"},
        headers=HTML,
    )
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "PKCE" in response.text


def test_a_public_clients_code_without_pkce_is_refused_at_the_token_endpoint() -> None:
    """Behind the authorization check, the token endpoint refuses it too: a public client's
    code must carry a challenge (a code minted before the client became public, say)."""
    from dingmw.core.drive import SyncRunner
    from dingmw.hub.errors import GrantError
    from dingmw.hub.tokens import HubTokens

    tokens = HubTokens(code_ttl=60, token_ttl=60, refresh_ttl=60)
    store = MemoryStore()
    run = SyncRunner(httpx.Client(), store).run
    person = Identity(unionid=ZHANGSAN.unionid, name=ZHANGSAN.nick, flow="oauth2")
    grant = tokens.new_grant("spa", person, sid="", scope="openid", auth_time=None)
    code = run(tokens.issue_code(grant, redirect_url=f"{RP}/spa", state="s"))
    with pytest.raises(GrantError, match="PKCE"):
        run(
            tokens.redeem_code(
                code, "spa", state=None, redirect_url=f"{RP}/spa", code_verifier=None, public=True
            )
        )


@pytest.mark.parametrize(
    ("verifier_of", "description"),
    [
        ("other", "does not match"),
        ("none", "code_verifier is required"),
        ("short", "malformed"),
    ],
)
def test_pkce_is_enforced(
    browser: httpx.Client, fake: FakeDingTalk, verifier_of: str, description: str
) -> None:
    _, challenge = pkce()
    back = authorize(browser, fake, code_challenge=challenge, code_challenge_method="S256")
    data = {
        "grant_type": "authorization_code",
        "code": back.params["code"],
        "redirect_uri": f"{RP}/cb",
    }
    if verifier_of == "other":
        data["code_verifier"] = pkce()[0]
    elif verifier_of == "short":
        data["code_verifier"] = "abc"
    response = token(browser, data, authorization=basic("rp", RP_SECRET))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert description in response.json()["error_description"]


def test_a_verifier_without_a_challenge_is_refused(
    browser: httpx.Client, fake: FakeDingTalk
) -> None:
    """RFC 9700 §2.1.1: no PKCE downgrade."""
    back = authorize(browser, fake)
    response = token(
        browser,
        {
            "grant_type": "authorization_code",
            "code": back.params["code"],
            "redirect_uri": f"{RP}/cb",
            "code_verifier": pkce()[0],
        },
        authorization=basic("rp", RP_SECRET),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_the_redirect_uri_must_be_sent_and_match(browser: httpx.Client, fake: FakeDingTalk) -> None:
    for redirect in (None, f"{RP}/other"):
        back = authorize(browser, fake)
        data = {"grant_type": "authorization_code", "code": back.params["code"]}
        if redirect:
            data["redirect_uri"] = redirect
        response = token(browser, data, authorization=basic("rp", RP_SECRET))
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": "code id_token"}, "unsupported_response_type"),
        ({"code_challenge": "x" * 43, "code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": "short", "code_challenge_method": "S256"}, "invalid_request"),
        ({"code_challenge_method": "S256"}, "invalid_request"),
        ({"request": "eyJ..."}, "request_not_supported"),
        ({"response_mode": "form_post"}, "invalid_request"),
        ({"prompt": "none login"}, "invalid_request"),
        ({"max_age": "soon"}, "invalid_request"),
    ],
)
def test_authorization_errors_go_back_to_the_client(
    browser: httpx.Client, params: dict[str, str], error: str
) -> None:
    query = {
        "client_id": "rp",
        "redirect_uri": f"{RP}/cb",
        "response_type": "code",
        "scope": "openid",
        "state": "s1",
        **params,
    }
    response = browser.get("/dingtalk/authorize", params=query, headers=HTML)
    assert response.status_code == 302
    back = httpx.URL(response.headers["location"])
    assert f"{back.scheme}://{back.host}{back.path}" == f"{RP}/cb"
    assert back.params["error"] == error
    assert back.params["state"] == "s1"
    assert back.params["iss"] == HUB
    assert "code" not in back.params


def test_authorize_by_post(browser: httpx.Client, fake: FakeDingTalk) -> None:
    """OpenID Connect Core §3.1.2.1: the authorization endpoint takes a form POST too."""
    verifier, challenge = pkce()
    form = {
        "client_id": "rp",
        "redirect_uri": f"{RP}/cb",
        "response_type": "code",
        "scope": "openid",
        "state": "posted",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    response = browser.post("/dingtalk/authorize", data=form, headers=HTML)
    assert response.status_code == 302, response.text
    back = browser.get(fake.scan(response.headers["location"], ZHANGSAN.unionid), headers=HTML)
    code = httpx.URL(back.headers["location"]).params
    assert code["state"] == "posted"
    tokens = token(
        browser,
        {
            "grant_type": "authorization_code",
            "code": code["code"],
            "redirect_uri": f"{RP}/cb",
            "code_verifier": verifier,
        },
        authorization=basic("rp", RP_SECRET),
    )
    assert tokens.status_code == 200, tokens.text
    not_a_form = browser.post(
        "/dingtalk/authorize", json=form, headers={**HTML, "content-type": "application/json"}
    )
    assert not_a_form.status_code == 400


def test_a_repeated_authorize_parameter_is_refused_on_the_hub(browser: httpx.Client) -> None:
    """RFC 6749 §3.1: which of two `redirect_uri` would be the client's? Neither: a page."""
    query = (
        f"response_type=code&client_id=rp&scope=openid&redirect_uri={RP}/cb"
        "&redirect_uri=http://evil.example/"
    )
    response = browser.get(f"/dingtalk/authorize?{query}", headers=HTML)
    assert response.status_code == 400
    assert "location" not in response.headers


def test_a_denial_at_dingtalk_goes_back_to_the_client(
    browser: httpx.Client, fake: FakeDingTalk
) -> None:
    """RFC 6749 §4.1.2.1: the client hears `access_denied` (with its state and the issuer)."""
    query = {
        "client_id": "rp",
        "redirect_uri": f"{RP}/cb",
        "response_type": "code",
        "scope": "openid",
        "state": "rp-state",
    }
    start = browser.get("/dingtalk/authorize", params=query, headers=HTML)
    denied = browser.get(
        fake.scan(start.headers["location"], ZHANGSAN.unionid, deny=True), headers=HTML
    )
    assert denied.status_code == 302, denied.text
    back = httpx.URL(denied.headers["location"])
    assert str(back.copy_with(query=None)) == f"{RP}/cb"
    assert back.params["error"] == "access_denied"
    assert back.params["state"] == "rp-state"
    assert back.params["iss"] == HUB
    assert "code" not in back.params


def test_a_person_the_allow_lists_refuse_goes_back_to_the_client_refused(
    keys: dict[str, str], router: Router, clock: Clock, fake: FakeDingTalk
) -> None:
    hub = make_hub(keys, router, clock, allowed_users=frozenset({"someone-else"}))
    with TestClient(hub, base_url=HUB, follow_redirects=False) as browser:
        back = authorize(browser, fake)
    assert back.params["error"] == "access_denied"
    assert "not allowed" in back.params["error_description"]
    assert back.params["state"] == "rp-state"
    assert "code" not in back.params


@pytest.mark.parametrize(
    ("client_id", "redirect_uri", "reason"),
    [
        ("nobody", f"{RP}/cb", "unknown_client"),
        ("rp", f"{RP}/cb/", "redirect_not_registered"),
        ("rp", f"{RP}/spa", "redirect_not_registered"),  # another client's
        ("rp", "http://evil.test/cb", "redirect_not_registered"),
    ],
)
def test_an_unregistered_client_or_redirect_uri_is_never_redirected_to(
    browser: httpx.Client, client_id: str, redirect_uri: str, reason: str
) -> None:
    query = {"client_id": client_id, "redirect_uri": redirect_uri, "response_type": "token"}
    response = browser.get("/dingtalk/authorize", params=query, headers=HTML)
    assert response.status_code == 400
    assert f'data-reason="{reason}"' in response.text
    assert "location" not in response.headers


def test_prompt_none_and_prompt_login(browser: httpx.Client, fake: FakeDingTalk) -> None:
    silent = authorize(browser, fake, prompt="none")
    assert silent.params["error"] == "login_required"
    assert fake.calls["/v1.0/oauth2/userAccessToken"] == 0
    authorize(browser, fake)  # now with a hub session
    assert "code" in authorize(browser, fake, prompt="none").params
    again = browser.get(
        "/dingtalk/authorize",
        params={
            "client_id": "rp",
            "redirect_uri": f"{RP}/cb",
            "response_type": "code",
            "scope": "openid",
            "prompt": "login",
        },
    )
    assert again.headers["location"].startswith(DEFAULT_LOGIN_URL)  # a new DingTalk login


def test_single_sign_on_gives_a_code_without_dingtalk(
    browser: httpx.Client, fake: FakeDingTalk
) -> None:
    first, _ = code_flow(browser, fake)
    second, _ = code_flow(browser, fake, nonce="n2")
    assert fake.calls["/v1.0/oauth2/userAccessToken"] == 1
    a = id_claims(browser, first["id_token"])
    b = id_claims(browser, second["id_token"], nonce="n2")
    assert a["sid"] == b["sid"]  # the same hub session
    assert "auth_time" not in b  # the hub does not know when its session began


# Token endpoint errors (RFC 6749 §5.2) ------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "headers", "status", "error"),
    [
        ({"grant_type": "authorization_code", "code": "x"}, {}, 401, "invalid_client"),
        (
            {"grant_type": "authorization_code", "code": "x", "client_id": "rp"},
            {},
            401,
            "invalid_client",
        ),
        (
            {
                "grant_type": "authorization_code",
                "code": "x",
                "client_id": "rp",
                "client_secret": "wrong-secret-000000",
            },
            {},
            401,
            "invalid_client",
        ),
        (
            {
                "grant_type": "authorization_code",
                "code": "x",
                "client_id": "spa",
                "client_secret": "anything-at-all-00",
            },
            {},
            401,
            "invalid_client",
        ),
        (
            {"grant_type": "authorization_code", "code": "x", "client_secret": RP_SECRET},
            {"authorization": basic("rp", RP_SECRET)},
            400,
            "invalid_request",
        ),
        (
            {"grant_type": "client_credentials"},
            {"authorization": basic("rp", RP_SECRET)},
            400,
            "unsupported_grant_type",
        ),
        (
            {"grant_type": "authorization_code"},
            {"authorization": basic("rp", RP_SECRET)},
            400,
            "invalid_request",
        ),
        (
            {"grant_type": "authorization_code", "code": "unknown"},
            {"authorization": basic("rp", RP_SECRET)},
            400,
            "invalid_grant",
        ),
    ],
)
def test_token_errors_are_rfc_6749_json(
    browser: httpx.Client, data: dict[str, str], headers: dict[str, str], status: int, error: str
) -> None:
    response = token(browser, data, **headers)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["error"] == error
    assert body["error_description"]
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Basic")


def test_a_repeated_parameter_is_refused(browser: httpx.Client) -> None:
    response = browser.post(
        "/dingtalk/token",
        content=b"grant_type=authorization_code&code=a&code=b",
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "authorization": basic("rp", RP_SECRET),
        },
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    "credentials",
    ["d2lraTp\xc3\xa9", "rp:é", "%%%", "cnA6"],
    ids=["latin1", "utf8", "junk", "nosep"],
)
def test_malformed_basic_credentials_are_invalid_client(
    browser: httpx.Client, credentials: str
) -> None:
    """Not Base64 (non-ASCII bytes included), or no `:` inside: 401 invalid_client."""
    response = browser.post(
        "/dingtalk/token",
        content=b"code=x&state=y",
        headers={
            b"content-type": b"text/plain",
            b"authorization": ("Basic " + credentials).encode("latin-1"),
        },
    )
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic")


def test_error_descriptions_keep_to_rfc_6749s_characters(browser: httpx.Client) -> None:
    """§5.2: printable ASCII without `"` or `\\`, whatever the request held."""
    for content, media in (
        (b"code=a&state=b", "application/json"),
        ('x"\\é…=1&x"\\é…=2'.encode(), "application/x-www-form-urlencoded"),
    ):
        response = browser.post(
            "/dingtalk/token",
            content=content,
            headers={"content-type": media, "authorization": basic("rp", RP_SECRET)},
        )
        assert response.status_code == 400
        description = response.json()["error_description"]
        assert description
        assert all(0x20 <= ord(c) <= 0x7E and c not in '"\\' for c in description), description


def test_basic_credentials_may_be_form_encoded(browser: httpx.Client, fake: FakeDingTalk) -> None:
    """RFC 6749 §2.3.1: the client id and secret are form-encoded before Base64."""
    back = authorize(browser, fake)
    encoded = "Basic " + base64.b64encode(b"rp:" + RP_SECRET.replace("-", "%2D").encode()).decode()
    response = token(
        browser,
        {
            "grant_type": "authorization_code",
            "code": back.params["code"],
            "redirect_uri": f"{RP}/cb",
        },
        authorization=encoded,
    )
    assert response.status_code == 200, response.text


# Userinfo and refresh ----------------------------------------------------------------------


def test_userinfo_gives_the_claims_of_the_scopes(browser: httpx.Client, fake: FakeDingTalk) -> None:
    body, _ = code_flow(browser, fake)
    info = browser.get(
        "/dingtalk/userinfo", headers={"authorization": f"Bearer {body['access_token']}"}
    )
    assert info.status_code == 200
    claims = info.json()
    assert claims["sub"] == "zhangsan"
    assert claims["unionid"] == ZHANGSAN.unionid
    assert claims["preferred_username"] == "zhangsan"
    assert claims["name"] == ZHANGSAN.name
    assert claims["email"] == ZHANGSAN.org_email
    assert claims["dept_ids"] == [1, 100]
    assert "username" not in claims  # the seed's shape is for the seed's tokens only
    narrow, _ = code_flow(browser, fake, scope="openid")
    only = browser.get(
        "/dingtalk/userinfo", headers={"authorization": f"Bearer {narrow['access_token']}"}
    ).json()
    assert set(only) == {"sub", "unionid"}


def test_a_client_gets_only_its_registered_scopes(
    browser: httpx.Client, fake: FakeDingTalk
) -> None:
    back = authorize(
        browser,
        fake,
        client_id="mail",
        redirect_uri=f"{RP}/mail",
        scope="openid profile email phone",
    )
    response = token(
        browser,
        {
            "grant_type": "authorization_code",
            "code": back.params["code"],
            "redirect_uri": f"{RP}/mail",
        },
        authorization=basic("mail", MAIL_SECRET),
    )
    body = response.json()
    assert body["scope"] == "openid email"
    claims = id_claims(browser, body["id_token"], aud="mail")
    assert "name" not in claims
    assert claims["email"] == ZHANGSAN.org_email


def test_userinfo_needs_the_openid_scope(browser: httpx.Client, fake: FakeDingTalk) -> None:
    back = authorize(browser, fake, scope="profile")  # plain OAuth 2.0, no ID token
    body = token(
        browser,
        {
            "grant_type": "authorization_code",
            "code": back.params["code"],
            "redirect_uri": f"{RP}/cb",
        },
        authorization=basic("rp", RP_SECRET),
    ).json()
    assert "id_token" not in body
    info = browser.get(
        "/dingtalk/userinfo", headers={"authorization": f"Bearer {body['access_token']}"}
    )
    assert info.status_code == 403
    assert 'error="insufficient_scope"' in info.headers["www-authenticate"]


def test_refresh_rotates_and_gives_a_new_id_token(
    browser: httpx.Client, fake: FakeDingTalk
) -> None:
    body, _ = code_flow(browser, fake)
    refresh = {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
    rotated = token(browser, refresh, authorization=basic("rp", RP_SECRET))
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()
    assert new["refresh_token"] != body["refresh_token"]
    claims = id_claims(browser, new["id_token"], aud="rp")
    assert "nonce" not in claims
    assert claims["sub"] == "zhangsan"
    narrowed = token(
        browser,
        {"grant_type": "refresh_token", "refresh_token": new["refresh_token"], "scope": "openid"},
        authorization=basic("rp", RP_SECRET),
    ).json()
    assert narrowed["scope"] == "openid"
    reuse = token(browser, refresh, authorization=basic("rp", RP_SECRET))
    assert reuse.json()["error"] == "invalid_grant"
    info = browser.get(
        "/dingtalk/userinfo", headers={"authorization": f"Bearer {narrowed['access_token']}"}
    )
    assert info.status_code == 401  # reuse revoked the whole family


def test_refresh_cannot_widen_the_scope(browser: httpx.Client, fake: FakeDingTalk) -> None:
    body, _ = code_flow(browser, fake, scope="openid")
    response = token(
        browser,
        {
            "grant_type": "refresh_token",
            "refresh_token": body["refresh_token"],
            "scope": "openid email",
        },
        authorization=basic("rp", RP_SECRET),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"
    # The mistake does not spend the refresh token: the same one, asked right, still works.
    again = token(
        browser,
        {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]},
        authorization=basic("rp", RP_SECRET),
    )
    assert again.status_code == 200, again.text
    assert again.json()["scope"] == "openid"


def test_an_empty_scope_in_a_refresh_is_the_one_granted(
    browser: httpx.Client, fake: FakeDingTalk
) -> None:
    """RFC 6749 §6: an omitted scope is the original one; an empty one is not "no scope"."""
    body, _ = code_flow(browser, fake, scope="openid profile")
    response = token(
        browser,
        {"grant_type": "refresh_token", "refresh_token": body["refresh_token"], "scope": ""},
        authorization=basic("rp", RP_SECRET),
    )
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "openid profile"
    assert "id_token" in response.json()


# Logout ------------------------------------------------------------------------------------


def test_a_code_is_refused_once_its_hub_session_has_ended(
    browser: TestClient, fake: FakeDingTalk
) -> None:
    """A code minted in a hub session that logs out before the site redeems it gets no
    tokens, and stays spent."""
    verifier, challenge = pkce()
    back = authorize(browser, fake, code_challenge=challenge, code_challenge_method="S256")
    assert browser.get("/dingtalk/logout", headers=SAME_ORIGIN).status_code == 200
    grant = {
        "grant_type": "authorization_code",
        "code": back.params["code"],
        "redirect_uri": f"{RP}/cb",
        "code_verifier": verifier,
    }
    refused = token(browser, grant, authorization=basic("rp", RP_SECRET))
    assert refused.status_code == 400
    assert refused.json() == {
        "error": "invalid_grant",
        "error_description": "the hub session of this code has ended",
    }
    again = token(browser, grant, authorization=basic("rp", RP_SECRET))
    assert again.status_code == 400
    assert "already used" in again.json()["error_description"]


def test_hub_logout_revokes_what_the_session_got(
    hub: Hub, browser: TestClient, fake: FakeDingTalk
) -> None:
    mine, _ = code_flow(browser, fake)
    with TestClient(hub, base_url=HUB, follow_redirects=False) as other:
        theirs, _ = code_flow(other, fake, unionid=LISI.unionid)
    logout = browser.get("/dingtalk/logout", headers=SAME_ORIGIN)
    assert logout.status_code == 200
    assert "dingmw_session=;" in logout.headers["set-cookie"]
    bearer = {"authorization": f"Bearer {mine['access_token']}"}
    assert browser.get("/dingtalk/userinfo", headers=bearer).status_code == 401
    refreshed = token(
        browser,
        {"grant_type": "refresh_token", "refresh_token": mine["refresh_token"]},
        authorization=basic("rp", RP_SECRET),
    )
    assert refreshed.json()["error"] == "invalid_grant"
    # Another person's session is untouched.
    other_bearer = {"authorization": f"Bearer {theirs['access_token']}"}
    assert browser.get("/dingtalk/userinfo", headers=other_bearer).status_code == 200
    # And the next login at a site needs DingTalk again.
    params = {
        "client_id": "rp",
        "redirect_uri": f"{RP}/cb",
        "response_type": "code",
        "scope": "openid",
    }
    again = browser.get("/dingtalk/authorize", params=params)
    assert again.headers["location"].startswith(DEFAULT_LOGIN_URL)


def test_seed_tokens_are_revoked_by_logout_too(browser: httpx.Client, fake: FakeDingTalk) -> None:
    """A client may use both dialects; the seed's tokens belong to the session as well."""
    query = {"redirect_url": f"{RP}/cb", "client_id": "rp", "state": "s"}
    first = browser.get("/dingtalk/authorize", params=query)
    callback = fake.scan(first.headers["location"], ZHANGSAN.unionid)
    code = httpx.URL(browser.get(callback).headers["location"]).params["code"]
    body = browser.post(
        "/dingtalk/token",
        content=f"code={code}&state=s".encode(),
        headers={"content-type": "text/plain", "authorization": basic("rp", RP_SECRET)},
    ).json()
    assert list(body) == ["access_token", "expiry_in", "refresh_token", "token_type"]
    seed = {"authorization": body["access_token"]}
    assert browser.get("/dingtalk/userinfo", headers=seed).status_code == 200
    assert browser.post("/dingtalk/logout", headers=SAME_ORIGIN).status_code == 200
    assert browser.get("/dingtalk/userinfo", headers=seed).status_code == 401


def test_rp_initiated_logout(browser: httpx.Client, fake: FakeDingTalk, router: Router) -> None:
    body, _ = code_flow(browser, fake)
    sid = id_claims(browser, body["id_token"])["sid"]
    params = {
        "id_token_hint": body["id_token"],
        "post_logout_redirect_uri": f"{RP}/bye",
        "state": "bye-state",
    }
    response = browser.get(
        "/dingtalk/logout", params=params, headers={"sec-fetch-site": "cross-site"}
    )
    assert response.status_code == 302
    assert response.headers["location"] == f"{RP}/bye?state=bye-state"
    # The relying party heard of it on its back channel, with a logout token for the session.
    (sent,) = router.received
    assert str(sent.url) == f"{RP}/backchannel"
    assert sent.headers["content-type"] == "application/x-www-form-urlencoded"
    logout_token = parse_qs(sent.content.decode())["logout_token"][0]
    header = json.loads(base64.urlsafe_b64decode(logout_token.split(".")[0] + "=="))
    assert header["typ"] == "logout+jwt"
    claims = id_claims(browser, logout_token, iss=HUB, aud="rp")
    assert claims["sid"] == sid
    assert claims["sub"] == "zhangsan"
    assert "http://schemas.openid.net/event/backchannel-logout" in claims["events"]
    assert "nonce" not in claims
    assert claims["jti"]


def test_a_post_logout_redirect_uri_must_be_registered(
    browser: httpx.Client, fake: FakeDingTalk
) -> None:
    body, _ = code_flow(browser, fake)
    for uri in ("http://evil.test/", f"{RP}/cb"):
        response = browser.get(
            "/dingtalk/logout",
            params={"id_token_hint": body["id_token"], "post_logout_redirect_uri": uri},
            headers=HTML,
        )
        assert response.status_code == 400
        assert "location" not in response.headers
    without_client = browser.get(
        "/dingtalk/logout", params={"post_logout_redirect_uri": f"{RP}/bye"}, headers=HTML
    )
    assert without_client.status_code == 400
    with_client = browser.get(
        "/dingtalk/logout",
        params={"client_id": "rp", "post_logout_redirect_uri": f"{RP}/bye"},
        headers=SAME_ORIGIN,
    )
    assert with_client.status_code == 302


def test_a_forged_id_token_hint_is_refused(browser: httpx.Client, fake: FakeDingTalk) -> None:
    body, _ = code_flow(browser, fake)
    head, payload, signature = body["id_token"].split(".")
    forged = f"{head}.{payload}.{signature[::-1]}"
    response = browser.get("/dingtalk/logout", params={"id_token_hint": forged}, headers=HTML)
    assert response.status_code == 400


def test_a_cross_site_logout_without_a_hint_asks_first(
    browser: httpx.Client, fake: FakeDingTalk
) -> None:
    body, _ = code_flow(browser, fake)
    bearer = {"authorization": f"Bearer {body['access_token']}"}
    page = browser.get(
        "/dingtalk/logout",
        params={"client_id": "rp", "post_logout_redirect_uri": f"{RP}/bye", "state": "s"},
        headers={**HTML, "sec-fetch-site": "cross-site"},
    )
    assert page.status_code == 200
    assert 'form method="post" action="/dingtalk/logout"' in page.text
    assert "set-cookie" not in page.headers
    assert browser.get("/dingtalk/userinfo", headers=bearer).status_code == 200  # not yet
    # A cross-site POST (another site's form) is asked about too.
    forged = browser.post("/dingtalk/logout", data={}, headers={"origin": "http://evil.test"})
    assert forged.status_code == 200
    assert browser.get("/dingtalk/userinfo", headers=bearer).status_code == 200
    # The person confirms on the hub's page: a same-origin POST.
    done = browser.post(
        "/dingtalk/logout",
        data={"client_id": "rp", "post_logout_redirect_uri": f"{RP}/bye", "state": "s"},
        headers={"origin": HUB, "sec-fetch-site": "same-origin"},
    )
    # The browser would not follow a redirect to another site after the hub's own form
    # (its CSP form-action 'self'): the page sends it on.
    assert done.status_code == 200
    assert f'href="{RP}/bye?state=s"' in done.text
    assert "dingmw_session=;" in done.headers["set-cookie"]
    assert browser.get("/dingtalk/userinfo", headers=bearer).status_code == 401
