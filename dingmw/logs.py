"""Keep credentials out of log lines written by the libraries dingmw drives.

DingTalk wants some secrets in the query string (`gettoken?appsecret=`,
`?access_token=`), and httpx logs every request URL at INFO; an ASGI
server's access log shows callback URLs with their one-time codes. A filter
on those loggers replaces the values of such parameters with `***`.
"""

from __future__ import annotations

import logging
import re

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
    r"([?&](?:" + "|".join(SECRET_PARAMS) + r")=)[^&#\s\"']*",
    re.IGNORECASE,
)
LOGGERS = ("httpx", "uvicorn.access")


def redact(text: str) -> str:
    """`text` with the value of every secret query parameter replaced by `***`."""
    return _PATTERN.sub(r"\1***", text)


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact(str(arg)) if not isinstance(arg, int | float) else arg for arg in record.args
            )
        return True


_FILTER = RedactSecrets("dingmw")


def install() -> None:
    """Add the filter to httpx's and uvicorn's access loggers (once)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
