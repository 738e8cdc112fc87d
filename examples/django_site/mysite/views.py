"""The example's pages: who is logged in, to dingmw and to Django."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils.html import escape

from dingmw import get_identity


def home(request: HttpRequest) -> HttpResponse:
    identity = get_identity(request)
    user: Any = request.user  # a User here: dingmw lets no one in without a login
    return HttpResponse(
        f"<h1>你好, {escape(user.get_full_name() or user.get_username())}</h1>"
        f"<p id='user'>{escape(user.get_username())} staff={user.is_staff}</p>"
        f"<p id='unionid'>{escape(identity.unionid if identity else '-')}</p>"
        '<p><a href="/admin/">admin</a> · <a href="/dingtalk/logout">log out</a></p>'
    )


def health(request: HttpRequest) -> HttpResponse:
    who = request.user.get_username() if request.user.is_authenticated else "-"
    return HttpResponse(f"ok {who}", content_type="text/plain")
