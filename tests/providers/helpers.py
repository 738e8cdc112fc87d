"""Helpers for the provider tests: settings and the recorded DingTalk samples.

The samples live in `tests/samples/dingtalk/` (see `tests/core/helpers.py` for
the list and the `dingtalk-api.md` section each one follows).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from dingmw.config import Settings

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "dingtalk"
APP_KEY = "dingappkey0001"
APP_SECRET = "app-secret-VERY-SECRET-0123456789"
SECRET_KEY = "session-key-SECRET-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "app_key": APP_KEY,
        "app_secret": APP_SECRET,
        "secret_keys": (SECRET_KEY,),
    }
    values.update(overrides)
    return Settings(**values)


def sample(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SAMPLES / f"{name}.json").read_text("utf-8"))
    return data


def sample_names() -> list[str]:
    return sorted(path.stem for path in SAMPLES.glob("*.json"))


def reply(status: int = 200, name: str | None = None, **fields: Any) -> httpx.Response:
    data = sample(name) if name else {}
    data.update(fields)
    return httpx.Response(status, json=data)
