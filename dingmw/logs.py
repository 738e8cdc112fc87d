"""Keep credentials out of log lines written by the libraries dingmw drives.

DingTalk wants some secrets in the query string (`gettoken?appsecret=`,
`?access_token=`), and httpx logs every request URL at INFO; a server's
access log shows callback URLs with their one-time codes (DingTalk's, the
JSAPI's, the hub's). One filter, on httpx's logger and on the access loggers
of uvicorn (`uvicorn.access`), gunicorn (`gunicorn.access`) and werkzeug's
development server (`werkzeug`), replaces the values of such parameters with
`***`, wherever they appear in the line (the request line, gunicorn's `%(U)s`,
`%(q)s` or `%({referer}i)s` atoms).

With `DINGMW_LOG_FORMAT=json`, the `dingmw` logger writes one JSON object per line
(`JsonFormatter`): a line per login outcome and per failed DingTalk call, with the
request id, the flow, the call and the latency, and never a secret (the same masking).
"""

from __future__ import annotations

import contextvars
import datetime
import json
import logging
import re
import secrets
import sys
from collections.abc import MutableMapping
from typing import Any

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
    "code_verifier",
    # An ID token: it names the person (email, phone with its scope) and, while its session
    # lasts, logs them out of the hub without asking.
    "id_token_hint",
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


# --- structured logs (DINGMW_LOG_FORMAT=json) --------------------------------------------------

#: the fields a dingmw log record may carry besides its message (`extra=fields(...)`)
FIELDS = ("event", "request_id", "flow", "call", "outcome", "reason", "status", "latency_ms")
_REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "dingmw_request_id", default=None
)
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:\-]{1,64}$")


def begin_request(given: str | None) -> None:
    """Start the request being decided: its id is its `X-Request-Id` when that is a sane
    token (a proxy's), else a random one, made when a log record first needs it (most
    requests log nothing); later log records of this request carry it."""
    _REQUEST_ID.set(given if given and _REQUEST_ID_RE.match(given) else "")


def request_id() -> str | None:
    """The id of the request being handled (None outside one)."""
    found = _REQUEST_ID.get()
    if found == "":
        found = secrets.token_hex(8)
        _REQUEST_ID.set(found)
    return found


def fields(**values: object) -> dict[str, object]:
    """`extra=` for a log record: the given fields (None dropped) and the request id."""
    found = {k: v for k, v in values.items() if v is not None}
    request_id_ = request_id()
    if request_id_ is not None:
        found.setdefault("request_id", request_id_)
    return found


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (with secret query parameters
    masked, as in every log line dingmw writes) and dingmw's fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for name in FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                entry[name] = redact(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["error"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is at the time (a server may replace it)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> Any:
        return self._stream if self._stream is not None else sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        self._stream = value if value is not sys.stderr else None


def use_json(logger_name: str = "dingmw") -> logging.Handler:
    """Send the `dingmw` logger's records, as JSON lines, to stderr (once; it stops passing
    them to the root logger, so they are not written twice)."""
    logger = logging.getLogger(logger_name)
    for handler in logger.handlers:
        if isinstance(handler.formatter, JsonFormatter):
            return handler
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
    logger.propagate = False
    return handler
