"""The hub's signing keys (`DINGMW_HUB_OIDC_KEY_FILE`), through joserfc.

Each file holds one PEM private key: RSA of at least 2048 bits (RS256) or EC
P-256 (ES256). Its `kid` is its RFC 7638 thumbprint, so the same file gives the
same `kid` on every instance. The first key signs; every key is published in
the JWKS, so tokens signed before a rotation still verify.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    from joserfc.jwk import ECKey, RSAKey

MIN_RSA_BITS = 2048
NEEDS_EXTRA = "the OpenID Connect face needs joserfc: pip install 'dingmw[hub]'"


@dataclasses.dataclass(frozen=True, slots=True)
class SigningKey:
    key: RSAKey | ECKey
    alg: str  # RS256 or ES256
    kid: str


def _load_one(path: str) -> SigningKey:
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec, rsa
        from joserfc.jwk import ECKey, RSAKey
    except ImportError:  # pragma: no cover - the extra is in the test environment
        raise ConfigError(NEEDS_EXTRA) from None
    try:
        with open(path, "rb") as handle:
            pem = handle.read()
    except OSError as exc:
        raise ConfigError(
            f"cannot read the key file {path!r} ({exc.strerror or 'error'})"
        ) from None
    try:
        private = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        try:
            serialization.load_pem_public_key(pem)
        except ValueError:
            raise ConfigError(f"{path!r} does not hold an unencrypted PEM private key") from None
        raise ConfigError(f"{path!r} holds a public key; the hub needs the private key") from None
    key: RSAKey | ECKey
    if isinstance(private, rsa.RSAPrivateKey):
        if private.key_size < MIN_RSA_BITS:
            raise ConfigError(f"the RSA key in {path!r} must have at least {MIN_RSA_BITS} bits")
        key, alg = RSAKey.import_key(private), "RS256"
    elif isinstance(private, ec.EllipticCurvePrivateKey) and private.curve.name == "secp256r1":
        key, alg = ECKey.import_key(private), "ES256"
    else:
        raise ConfigError(f"the key in {path!r} must be RSA (2048 bits or more) or EC P-256")
    return SigningKey(key, alg, key.thumbprint())


def load_keys(paths: Sequence[str]) -> tuple[SigningKey, ...]:
    keys = tuple(_load_one(path) for path in paths)
    kids = [k.kid for k in keys]
    if len(kids) != len(set(kids)):
        raise ConfigError("the same key is listed twice")
    return keys


class Signer:
    """Signs JWTs with the first key; publishes and verifies with all of them."""

    def __init__(self, keys: Sequence[SigningKey]) -> None:
        if not keys:
            raise ValueError("at least one key")
        self._keys = tuple(keys)
        from joserfc.jwk import KeySet

        self._set = KeySet([k.key for k in self._keys])

    @property
    def algorithms(self) -> list[str]:
        return sorted({k.alg for k in self._keys})

    def jwks(self) -> dict[str, Any]:
        """The public JWK Set (RFC 7517), each key with `kid`, `alg` and `use`."""
        keys = []
        for k in self._keys:
            public = dict(k.key.as_dict(private=False))
            public.update(kid=k.kid, alg=k.alg, use="sig")
            keys.append(public)
        return {"keys": keys}

    def sign(self, claims: Mapping[str, Any], *, typ: str = "JWT") -> str:
        from joserfc import jwt

        first = self._keys[0]
        header = {"alg": first.alg, "kid": first.kid, "typ": typ}
        return jwt.encode(header, dict(claims), first.key, algorithms=[first.alg])

    def verify(self, token: str) -> dict[str, Any] | None:
        """The claims of a JWT this hub signed (any of its keys), or None. Only the signature
        is checked here; the caller checks `iss`, `aud` and times."""
        from joserfc import jwt
        from joserfc.errors import JoseError

        try:
            decoded = jwt.decode(token, self._set, algorithms=self.algorithms)
        except (JoseError, ValueError):
            return None
        return dict(decoded.claims)
