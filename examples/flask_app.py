"""Flask behind dingmw (WSGI).

    python examples/flask_app.py            # against a fake DingTalk started here
    DINGMW_APP_KEY=... DINGMW_APP_SECRET=... DINGMW_SECRET_KEY=... python examples/flask_app.py

With no `DINGMW_APP_KEY` in the environment it starts the fake DingTalk on a
free port and points the settings at it, so it runs with no account.
"""

from __future__ import annotations

import html
import os

from flask import Flask, request

from dingmw import Settings, WSGIMiddleware, get_identity

app = Flask(__name__)


@app.route("/")
def home() -> str:
    me = get_identity(request)
    if me is None:  # never: "/" is not a public path
        return "not logged in"
    return (
        f"<h1>你好, {html.escape(me.display_name)}</h1>"
        f"<p>REMOTE_USER = {html.escape(request.remote_user or '')}</p>"
        '<p><a href="/dingtalk/me">/dingtalk/me</a> · <a href="/dingtalk/logout">log out</a></p>'
    )


@app.route("/health")
def health() -> str:
    return "ok"


def settings() -> Settings:
    if "DINGMW_APP_KEY" in os.environ:
        return Settings.from_env()
    from dingmw.demo import fake_settings, start_fake

    return fake_settings(start_fake())


if __name__ == "__main__":
    app.wsgi_app = WSGIMiddleware(app.wsgi_app, settings())  # type: ignore[method-assign]
    app.run(host="127.0.0.1", port=int(os.environ.get("PORT", "8000")))
