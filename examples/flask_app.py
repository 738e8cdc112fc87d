"""Flask behind dingmw (WSGI), with the `dingmw.flask` extension and decorators.

    python examples/flask_app.py            # against a fake DingTalk started here
    DINGMW_APP_KEY=... DINGMW_APP_SECRET=... DINGMW_SECRET_KEY=... python examples/flask_app.py

With no `DINGMW_APP_KEY` in the environment it starts the fake DingTalk on a
free port and points the settings at it, so it runs with no account. The app
is built by a factory, so a test imports this module without any `DINGMW_*`.
"""

from __future__ import annotations

import html
import os
from typing import Any

from flask import Flask, request

from dingmw import Settings
from dingmw.flask import DingTalk, current_identity, login_required, require

# Members of department 100 of the fake organisation (张三) may open /admin.
ADMIN_DEPTS = (100,)


def create_app(settings: Settings | None = None, **options: Any) -> Flask:
    """The application; `settings=None` reads `DINGMW_*` (from `app.config` or the environment)."""
    app = Flask(__name__)

    @app.route("/")
    def home() -> str:
        me = current_identity()
        if me is None:  # never: "/" is not a public path
            return "not logged in"
        return (
            f"<h1>你好, {html.escape(me.display_name)}</h1>"
            f"<p>REMOTE_USER = {html.escape(request.remote_user or '')}</p>"
            '<p><a href="/admin">admin</a> · <a href="/dingtalk/me">/dingtalk/me</a> · '
            '<a href="/dingtalk/logout">log out</a></p>'
        )

    @app.route("/admin")
    @require(depts=ADMIN_DEPTS)
    def admin() -> str:
        return "admin area"

    @app.route("/health")
    def health() -> str:
        return "ok"  # in DINGMW_PUBLIC_PATHS: no login needed

    @app.route("/health/me")
    @login_required  # a public path whose view still wants a person
    def health_me() -> str:
        me = current_identity()
        return f"checked by {me.display_name if me else '?'}"

    DingTalk(app, settings=settings, **options)
    return app


def settings() -> Settings:
    if "DINGMW_APP_KEY" in os.environ:
        return Settings.from_env()
    import dataclasses

    from dingmw.demo import fake_settings, start_fake

    return dataclasses.replace(
        fake_settings(start_fake()), public_paths=("/health", "/health/*"), enrich="detail"
    )


if __name__ == "__main__":
    create_app(settings()).run(host="127.0.0.1", port=int(os.environ.get("PORT", "8000")))
