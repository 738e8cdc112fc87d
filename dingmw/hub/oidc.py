"""The hub's OpenID Connect face: discovery, ID tokens, logout tokens (all signed by `keys`).

The issuer is the hub's public base URL (`DINGMW_BASE_URL`, else derived from
the request); every endpoint in the discovery document is below it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from .claims import all_claims, claims, supported_claims
from .keys import Signer
from .registry import AUTH_METHODS
from .settings import SCOPES, HubClient
from .tokens import IssuedTokens

DISCOVERY_PATHS = ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server")
BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_TTL = 120


class OpenIDProvider:
    def __init__(self, signer: Signer, *, token_ttl: int, clock: Callable[[], float]) -> None:
        self.signer = signer
        self.token_ttl = token_ttl
        self.clock = clock

    def discovery(self, issuer: str, prefix: str) -> dict[str, Any]:
        """OpenID Connect Discovery 1.0 §3 / RFC 8414 §2."""
        base = f"{issuer}{prefix}"
        return {
            "issuer": issuer,
            "authorization_endpoint": f"{base}/authorize",
            "token_endpoint": f"{base}/token",
            "userinfo_endpoint": f"{base}/userinfo",
            "jwks_uri": f"{base}/jwks",
            "end_session_endpoint": f"{base}/logout",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": self.signer.algorithms,
            "scopes_supported": list(SCOPES),
            "claims_supported": sorted(
                {"iss", "aud", "exp", "iat", "auth_time", "nonce", "sid"} | set(supported_claims())
            ),
            "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
            "code_challenge_methods_supported": ["S256"],
            "prompt_values_supported": ["none", "login", "consent"],
            "authorization_response_iss_parameter_supported": True,
            "claims_parameter_supported": False,
            "request_parameter_supported": False,
            "request_uri_parameter_supported": False,
            "backchannel_logout_supported": True,
            "backchannel_logout_session_supported": True,
        }

    def id_token(self, issuer: str, tokens: IssuedTokens, client: HubClient) -> str:
        """OpenID Connect Core §2: the person's claims for the granted scopes, plus `name` and
        `email` when known and the client may have them."""
        grant = tokens.grant
        now = int(self.clock())
        body = claims(grant.identity, grant.scopes)
        every = all_claims(grant.identity)
        for claim, scope in (("name", "profile"), ("email", "email")):
            if every[claim] and client.allows(scope):
                body[claim] = every[claim]
        body.update(iss=issuer, aud=client.client_id, iat=now, exp=now + self.token_ttl)
        if grant.sid:
            body["sid"] = grant.sid
        if grant.auth_time is not None:
            body["auth_time"] = grant.auth_time
        if tokens.nonce:
            body["nonce"] = tokens.nonce
        return self.signer.sign(body)

    def logout_token(self, issuer: str, client_id: str, sid: str, sub: str) -> str:
        """OpenID Connect Back-Channel Logout 1.0 §2.4."""
        now = int(self.clock())
        body = {
            "iss": issuer,
            "aud": client_id,
            "iat": now,
            "exp": now + LOGOUT_TOKEN_TTL,
            "jti": secrets.token_urlsafe(16),
            "sub": sub,
            "sid": sid,
            "events": {BACKCHANNEL_EVENT: {}},
        }
        return self.signer.sign(body, typ="logout+jwt")

    def hint(self, token: str, issuer: str) -> dict[str, Any] | None:
        """The claims of an `id_token_hint` this hub issued (expired ones too), or None."""
        body = self.signer.verify(token)
        if body is None or body.get("iss") != issuer or not isinstance(body.get("aud"), str):
            return None
        return body
