"""PEM signing keys for the hub's OpenID Connect tests, written to a temporary directory."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.jwk import ECKey, RSAKey


def _small_rsa() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505  # refused
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_keys(directory: Path) -> dict[str, str]:
    """Files holding an RSA 2048 key, an EC P-256 key, a small RSA key, a P-384 key and a
    public key; name → path."""
    keys = {
        "rsa": RSAKey.generate_key(2048).as_pem(private=True),
        "ec": ECKey.generate_key("P-256").as_pem(private=True),
        "rsa1024": _small_rsa(),
        "p384": ECKey.generate_key("P-384").as_pem(private=True),
        "public": RSAKey.generate_key(2048).as_pem(private=False),
    }
    paths = {}
    for name, pem in keys.items():
        path = directory / f"{name}.pem"
        path.write_bytes(pem)
        paths[name] = str(path)
    return paths
