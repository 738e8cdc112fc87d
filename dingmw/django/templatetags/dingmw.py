"""`{% load dingmw %}{% dingmw_login_url next %}`: DingTalk's login page, then back to `next`."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from django import template

from ...core.redirects import safe_next
from ..conf import dingmw_settings

register = template.Library()


@register.simple_tag(takes_context=True)
def dingmw_login_url(context: Any, next_path: str | None = None) -> str:
    request = context.get("request")
    root = request.META.get("SCRIPT_NAME", "") if request is not None else ""
    target = safe_next(next_path) or "/"
    return f"{root}{dingmw_settings().path_prefix}/login?next={quote(target, safe='/')}"
