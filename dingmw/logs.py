"""Keep credentials out of log lines written by the libraries dingmw drives.

DingTalk wants some secrets in the query string (`gettoken?appsecret=`,
`?access_token=`), and httpx logs every request URL at INFO; a server's
access log shows callback URLs with their one-time codes (DingTalk's, the
JSAPI's, the hub's). One filter, on httpx's logger and on the access loggers
of uvicorn (`uvicorn.access`), gunicorn (`gunicorn.access`) and werkzeug's
development server (`werkzeug`), replaces the values of such parameters with
`***`, wherever they appear in the line (the request line, gunicorn's `%(U)s`,
`%(q)s` or `%({referer}i)s` atoms).
"""

from __future__ import annotations

import logging
import re
from collections.abc import MutableMapping

SECRET_PARAMS = (
    "appsecret",
    "access_token",
    "sns_token",
    "signature",
    "code",
    "authCode",
    "tmp_auth_code",
    "loginTmpCode",
    "jsapi_code",
    "refresh_token",
    "client_secret",
)
_PATTERN = re.compile(
    # After `?` or `&`, or at the start of a value (gunicorn's `%(q)s` atom has no `?`).
    r"((?:^|[?&])(?:" + "|".join(SECRET_PARAMS) + r")=)[^&#\s\"']*",
    re.IGNORECASE,
)
LOGGERS = ("httpx", "uvicorn.access", "gunicorn.access", "werkzeug")


def redact(text: str) -> str:
    """`text` with the value of every secret query parameter replaced by `***`."""
    return _PATTERN.sub(r"\1***", text)


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        args = record.args
        if isinstance(args, tuple):
            record.args = tuple(
                redact(str(arg)) if not isinstance(arg, int | float) else arg for arg in args
            )
        elif isinstance(args, MutableMapping):
            # gunicorn's access log passes its atoms as one mapping (its own dict
            # subclass, which answers missing header atoms): change it in place.
            for key, value in list(args.items()):
                if isinstance(value, str):
                    args[key] = redact(value)
        return True


_FILTER = RedactSecrets("dingmw")


def install() -> None:
    """Add the filter to httpx's logger and the servers' access loggers (once)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
