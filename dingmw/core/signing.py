"""HMAC-SHA256 signed tokens with key rotation: the first key signs, every key verifies.

Each purpose (session, login state, ...) derives its own key from every
configured secret, so a token made for one purpose never verifies as another.
"""

from __future__ import annotations

import base64
import hashlib
import hmac


def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


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
        try:
            mac = b64decode(mac_text)
            message = body.encode("ascii")
        except (ValueError, UnicodeEncodeError):
            return None
        valid = False
        for key in self._keys:
            expected = hmac.new(key, message, hashlib.sha256).digest()
            valid |= hmac.compare_digest(mac, expected)
        if not valid:
            return None
        try:
            return b64decode(body)
        except ValueError:
            return None
