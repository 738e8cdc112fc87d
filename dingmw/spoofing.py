"""Client-sent headers that look like an identity never reach the wrapped app.

An application, a framework or a proxy behind dingmw may read the person from
a request header (Django's `RemoteUserMiddleware` reads `Remote-User`, many
apps read `X-Forwarded-User` or `X-Forwarded-Email` set by an auth proxy, and
dingmw's own `/auth` answers with `X-DingTalk-*`). A client can send any of
them, so before a request is forwarded the adapters remove:

* every `X-DingTalk-*` header;
* `Remote-User`, `X-Remote-User`, `X-Forwarded-User`, `X-Forwarded-Email`,
  `X-Forwarded-Preferred-Username`;
* every name in `DINGMW_STRIP_HEADERS`;

whatever their case, and with `_` for `-` (some servers pass `Remote_User`
through and frameworks read it as `Remote-User`). Under WSGI the server's own
`REMOTE_USER` (gunicorn fills it from an `Authorization: Basic` header) is
removed too; dingmw sets it for a logged-in person. Each removal is logged at
debug level on the `dingmw` logger.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, MutableMapping
from typing import Any

log = logging.getLogger("dingmw")

IDENTITY_HEADERS = (
    "remote-user",
    "x-remote-user",
    "x-forwarded-user",
    "x-forwarded-email",
    "x-forwarded-preferred-username",
)
IDENTITY_PREFIX = "x-dingtalk-"
_ENVIRON_PREFIX = "HTTP_X_DINGTALK_"
_JOINED_PREFIX = "\n" + _ENVIRON_PREFIX


class IdentityHeaders:
    """The names to strip for one set of settings, in the forms each adapter sees."""

    __slots__ = ("_environ_keys", "_environ_set", "_exact", "_first")

    def __init__(self, extra: Iterable[str] = ()) -> None:
        names = {*IDENTITY_HEADERS, *(name.strip().lower() for name in extra)}
        self._exact = frozenset(name.replace("_", "-").encode("latin-1") for name in names)
        self._first = frozenset({*(n[0] for n in self._exact), ord("x"), ord("X")})
        self._first |= frozenset(ord(chr(c).upper()) for c in self._first)
        self._environ_keys = (
            *sorted("HTTP_" + name.upper().replace("-", "_") for name in names),
            "REMOTE_USER",
        )
        self._environ_set = frozenset(self._environ_keys)

    # ASGI -----------------------------------------------------------------------

    def match(self, name: bytes) -> bool:
        """Whether an ASGI header name is identity-like."""
        if not name or name[0] not in self._first:
            return False
        name = name.lower().replace(b"_", b"-")
        return name.startswith(b"x-dingtalk-") or name in self._exact

    def scan(self, headers: Iterable[tuple[bytes, bytes]]) -> tuple[str, bool]:
        """The `Cookie` header (joined) and whether an identity-like header may be present.

        One pass, the one the adapter makes anyway for the cookie: a name is looked at
        only when its first byte is that of an identity-like name (a set lookup).
        """
        cookie = ""
        spoofed = False
        first = self._first
        for name, value in headers:
            if name == b"cookie":
                text = value.decode("latin-1")
                cookie = f"{cookie}; {text}" if cookie else text
            elif not spoofed and name and name[0] in first:
                spoofed = self.match(name)
        return cookie, spoofed

    def strip_scope(self, scope: MutableMapping[str, Any]) -> None:
        kept: list[tuple[bytes, bytes]] = []
        removed: list[str] = []
        for name, value in scope["headers"]:
            if self.match(name):
                removed.append(name.decode("latin-1"))
            else:
                kept.append((name, value))
        scope["headers"] = kept
        log.debug("dingmw: removed client-sent identity headers: %s", ", ".join(removed))

    # WSGI -----------------------------------------------------------------------

    def environ_spoofed(self, environ: MutableMapping[str, Any]) -> bool:
        """Whether the environ holds an identity-like key: a lookup of each exact name, and
        one substring search in its keys joined (a C call per key to `startswith` costs five
        times more)."""
        if not environ.keys().isdisjoint(self._environ_set):  # looks up our few keys
            return True
        try:
            joined = "\n".join(environ)
        except TypeError:  # a key that is not a str (PEP 3333 says they all are)
            return any(str(key).startswith(_ENVIRON_PREFIX) for key in environ)
        return _JOINED_PREFIX in joined or joined[: len(_ENVIRON_PREFIX)] == _ENVIRON_PREFIX

    def strip_environ(self, environ: MutableMapping[str, Any]) -> None:
        keys = self._environ_keys
        removed = [key for key in environ if key in keys or key.startswith(_ENVIRON_PREFIX)]
        for key in removed:
            del environ[key]
        log.debug("dingmw: removed client-sent identity headers: %s", ", ".join(removed))
