"""dingmw's own pages and error answers, in the reader's language.

`Pages.page` renders one of dingmw's templates with the site's name and logo, a
fresh nonce for its scripts in its Content-Security-Policy and, on a page that
may be loaded again (login, logout), the 中文/English switch, whose choice
(`?lang=`) a cookie keeps. The language is the switch's, else the cookie's, else
the best of `Accept-Language`.

`Pages.error` answers a `LoginError`: its error page for a browser, JSON naming
the problem for anything else. A 5xx is logged; a 503's detail (our own
infrastructure) stays in the log and out of the answer.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import urlencode

from .. import logs
from ..config import Settings
from ..errors import LoginError
from .http import Headers, WebRequest, WebResponse, set_cookie
from .redirects import is_https
from .responses import LANGUAGE_NAMES, LANGUAGES, choose_language, json_response, page_headers
from .routes import own_url, prefers_html

log = logging.getLogger("dingmw")

# The pages whose language switch reloads them in place.
RELOADABLE = ("login.html", "logout.html")


class Renderer(Protocol):
    def __call__(self, template: str, lang: str, context: Mapping[str, Any]) -> str: ...


class Pages:
    """The pages and error answers of one middleware (or hub) instance."""

    def __init__(self, settings: Settings, render: Renderer) -> None:
        self.settings = settings
        self.render = render

    def page(
        self,
        req: WebRequest,
        template: str,
        context: Mapping[str, Any],
        *,
        status: int = 200,
        headers: Headers = (),
    ) -> WebResponse:
        """A page of dingmw's, with a fresh nonce for its scripts in its Content-Security-Policy."""
        nonce = secrets.token_urlsafe(18)
        lang = self.language(req)
        page_context = {
            **context,
            "csp_nonce": nonce,
            "site": {"name": self.settings.site_name, "logo_url": self.settings.site_logo_url},
            "language_switch": self.language_switch(req, lang) if template in RELOADABLE else [],
        }
        body = self.render(template, lang, page_context)
        if req.query().get("lang") in LANGUAGES:  # the switch: keep the choice for what follows
            chosen = set_cookie(
                self.language_cookie,
                lang,
                path=f"{req.root_path}/",
                max_age=365 * 86400,
                secure=is_https(req, self.settings),
            )
            headers = (*headers, ("set-cookie", chosen))
        return WebResponse(
            status=status, headers=(*page_headers(nonce), *headers), body=body.encode()
        )

    def error(
        self, req: WebRequest, exc: LoginError, *, status: int | None = None, headers: Headers = ()
    ) -> WebResponse:
        status = status or exc.status
        if exc.status >= 500:
            log.warning(
                "dingmw: %s%s: %s",
                exc.reason,
                f" in {exc.params['call']}" if "call" in exc.params else "",
                exc.detail or "-",
                extra=logs.fields(
                    event="error", reason=exc.reason, call=exc.params.get("call"), status=status
                ),
            )
        # A 503 concerns our own infrastructure (addresses): in the log, not the answer.
        detail = "" if exc.status == 503 else exc.detail
        if not prefers_html(req.headers.get("accept", "")):
            data: dict[str, Any] = {"error": exc.reason}
            if detail:
                data["detail"] = detail
            data.update(exc.params)
            return json_response(status, data, headers)
        context = {
            "status": status,
            "reason": exc.reason,
            "detail": detail,
            "params": exc.params,
            "login_url": own_url(req, self.settings.path_prefix, "login"),
            "home_url": (req.root_path or "") + "/",
        }
        return self.page(req, "error.html", context, status=status, headers=headers)

    def language(self, req: WebRequest) -> str:
        """`zh` or `en`: the page's switch (`?lang=`), else its cookie, else `Accept-Language`."""
        chosen = req.query().get("lang") or req.cookies().get(self.language_cookie)
        if chosen in LANGUAGES:
            return chosen
        return choose_language(req.headers.get("accept-language", ""))

    @property
    def language_cookie(self) -> str:
        return f"{self.settings.cookie_name}_lang"

    def language_switch(self, req: WebRequest, lang: str) -> list[dict[str, Any]]:
        """The 中文/English links of a page that may be loaded again (login, logout)."""
        query = {k: v for k, v in req.query().items() if k != "lang"}
        base = f"{req.root_path}{req.path}?"
        return [
            {
                "lang": code,
                "label": LANGUAGE_NAMES[code],
                "url": base + urlencode({**query, "lang": code}),
                "current": code == lang,
            }
            for code in LANGUAGES
        ]
