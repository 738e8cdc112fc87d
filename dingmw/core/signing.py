"""Tokens made from the secret keys, with rotation: the first key makes, every key reads.

* `Signer`: HMAC-SHA256 signed tokens, `base64url(payload).base64url(mac)`, for
  values that are not private (the login state).
* `Sealer`: AES-256-GCM encrypted and authenticated tokens (`cryptography`'s
  AEAD), `base64url(version | nonce | ciphertext+tag)`, for values nobody but the
  server may read (the session).

Each purpose (session, login state, ...) derives its own key from every
configured secret, so a token made for one purpose never opens as another.
Every token has exactly one spelling: base64url without padding, and the text
must be what encoding its bytes gives back (no padding, no `+`/`/`, no stray
characters, no unused trailing bits), so a token cannot be varied without
being refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64decode(text: str) -> bytes:
    """Lenient decoding (for our own values); tokens use `canonical_b64decode`."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def canonical_b64decode(text: str) -> bytes | None:
    """The bytes of `text` when it is their one base64url spelling, else None."""
    if len(text) % 4 == 1 or not text.isascii():
        return None
    try:
        data = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (ValueError, binascii.Error):
        return None
    return data if b64encode(data) == text else None


class Signer:
    """Signs `payload` as `base64url(payload).base64url(mac)`."""

    __slots__ = ("_keys",)

    def __init__(self, secret_keys: tuple[str, ...], purpose: str) -> None:
        if not secret_keys:
            raise ValueError("at least one secret key is needed")
        label = f"dingmw/{purpose}".encode()
        self._keys = tuple(
            hmac.new(key.encode("utf-8"), label, hashlib.sha256).digest() for key in secret_keys
        )

    def sign(self, payload: bytes) -> str:
        body = b64encode(payload)
        mac = hmac.new(self._keys[0], body.encode("ascii"), hashlib.sha256).digest()
        return f"{body}.{b64encode(mac)}"

    def unsign(self, token: str) -> bytes | None:
        """The payload when some key's MAC matches (compared in constant time), else None."""
        body, sep, mac_text = token.rpartition(".")
        if not sep or not body or len(mac_text) != 43:
            return None
        mac = canonical_b64decode(mac_text)
        payload = canonical_b64decode(body)
        if mac is None or payload is None:
            return None
        message = body.encode("ascii")
        valid = False
        for key in self._keys:
            expected = hmac.new(key, message, hashlib.sha256).digest()
            valid |= hmac.compare_digest(mac, expected)
        return payload if valid else None


SEALED_VERSION = 1
_NONCE = 12
_TAG = 16


class Sealer:
    """Encrypts and authenticates `payload` with AES-256-GCM.

    The key for each secret is HKDF-SHA256(secret, info="dingmw/<purpose>/aes-256-gcm");
    every token has a fresh random 96-bit nonce. `aad` binds a token to what it
    is for (for example the cookie's name); the same `aad` must be given to open it.
    """

    __slots__ = ("_aeads", "_purpose")

    def __init__(self, secret_keys: tuple[str, ...], purpose: str) -> None:
        if not secret_keys:
            raise ValueError("at least one secret key is needed")
        info = f"dingmw/{purpose}/aes-256-gcm".encode()
        self._purpose = purpose.encode()
        self._aeads = tuple(
            AESGCM(
                HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(
                    key.encode("utf-8")
                )
            )
            for key in secret_keys
        )

    def seal(self, payload: bytes, aad: bytes = b"") -> str:
        nonce = os.urandom(_NONCE)
        header = bytes((SEALED_VERSION,))
        sealed = self._aeads[0].encrypt(nonce, payload, header + self._purpose + aad)
        return b64encode(header + nonce + sealed)

    def unseal(self, token: str, aad: bytes = b"") -> bytes | None:
        """The payload when some key opens the token, else None (forged, altered, unknown)."""
        raw = canonical_b64decode(token)
        if raw is None or len(raw) < 1 + _NONCE + _TAG or raw[0] != SEALED_VERSION:
            return None
        nonce, sealed = raw[1 : 1 + _NONCE], raw[1 + _NONCE :]
        associated = raw[:1] + self._purpose + aad
        for aead in self._aeads:
            try:
                return aead.decrypt(nonce, sealed, associated)
            except InvalidTag:
                continue
        return None
