"""A light install: what `import dingmw` and each adapter pull in, and a Flask-only
virtualenv (no Starlette, no uvicorn) that imports and runs the WSGI middleware."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement

import dingmw

PACKAGE = Path(dingmw.__file__).resolve().parent


def loaded_after(statement: str) -> set[str]:
    """The top-level modules a fresh interpreter has loaded after running `statement`."""
    show = "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    code = f"import sys\n{statement}\n{show}"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return set(out.stdout.split())


def test_import_dingmw_loads_no_adapter_and_no_http_stack() -> None:
    loaded = loaded_after("import dingmw")
    assert not loaded & {"starlette", "uvicorn", "httpx", "jinja2", "werkzeug", "anyio"}


@pytest.mark.parametrize(
    "statement",
    [
        "from dingmw import WSGIMiddleware",
        "import dingmw.core.flow",
        "from dingmw.testing import FakeDingTalk; FakeDingTalk().transport()",
    ],
)
def test_the_wsgi_side_imports_neither_starlette_nor_uvicorn(statement: str) -> None:
    loaded = loaded_after(statement)
    assert "starlette" not in loaded
    assert "uvicorn" not in loaded


def test_the_asgi_adapter_uses_starlette_but_not_uvicorn() -> None:
    loaded = loaded_after("from dingmw import ASGIMiddleware")
    assert "starlette" in loaded
    assert "uvicorn" not in loaded


def project() -> dict[str, Any]:
    with (PACKAGE.parent / "pyproject.toml").open("rb") as handle:
        data: dict[str, Any] = tomllib.load(handle)["project"]
    return data


def test_uvicorn_is_an_extra() -> None:
    plain = {Requirement(r).name for r in project()["dependencies"]}
    extras = project()["optional-dependencies"]
    assert "uvicorn" not in plain
    assert "uvicorn" in {Requirement(r).name for r in extras["server"]}


def _closure(names: list[str]) -> set[str]:
    """These distributions and everything they require (no extras)."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        key = name.lower().replace("_", "-")
        if key in seen:
            continue
        seen.add(key)
        for text in metadata.requires(name) or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return seen


def _link_distribution(name: str, into: Path) -> None:
    dist = metadata.distribution(name)
    site = Path(str(dist.locate_file("")))
    tops = {Path(str(f)).parts[0] for f in dist.files or () if not str(f).startswith("..")}
    for top in tops - {"__pycache__"}:
        if not (into / top).exists() and (site / top).exists():
            (into / top).symlink_to(site / top)


FLASK_ONLY_APP = textwrap.dedent(
    """
    import sys

    import httpx
    from flask import Flask, request

    from dingmw import Settings, WSGIMiddleware, get_identity
    from dingmw.testing import DEFAULT_APP_KEY, DEFAULT_APP_SECRET, ZHANGSAN, FakeDingTalk

    try:
        import starlette  # noqa: F401
    except ModuleNotFoundError:
        pass
    else:
        raise SystemExit("starlette is installed in the Flask-only venv")

    app = Flask(__name__)

    @app.route("/")
    def home():
        return "hello " + get_identity(request).display_name

    fake = FakeDingTalk()
    settings = Settings(
        app_key=DEFAULT_APP_KEY,
        app_secret=DEFAULT_APP_SECRET,
        secret_keys=("flask-only-venv-key-0123456789abcdef",),
    )
    app.wsgi_app = WSGIMiddleware(app.wsgi_app, settings, transport=fake.transport())
    client = httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://testserver")
    html = {"accept": "text/html"}
    assert client.get("/", headers=html).status_code == 302
    page = client.get("/dingtalk/login", params={"next": "/"}, headers=html)
    assert page.status_code == 200
    start = page.text.index('"authorize_url": "') + len('"authorize_url": "')
    authorize_url = page.text[start : page.text.index('"', start)].replace("\\\\u0026", "&")
    callback = client.get(fake.scan(authorize_url, ZHANGSAN.unionid), headers=html)
    assert callback.status_code == 302, callback.text
    assert client.get("/").text == "hello 张三"
    assert "starlette" not in sys.modules and "uvicorn" not in sys.modules
    print("flask-only ok")
    """
)


def test_a_flask_only_virtualenv_runs_the_wsgi_middleware(tmp_path: Path) -> None:
    """A fresh venv holding Flask and dingmw's core dependencies, without Starlette or uvicorn."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    (site,) = venv.glob("lib/python*/site-packages")
    core = [
        name
        for name in (Requirement(r).name for r in project()["dependencies"])
        if name != "starlette"
    ]
    names = _closure(["flask", *core])
    assert "starlette" not in names
    assert "uvicorn" not in names
    links = tmp_path / "packages"
    links.mkdir()
    for name in sorted(names):
        _link_distribution(name, links)
    (links / "dingmw").symlink_to(PACKAGE)
    (site / "flask_only.pth").write_text(f"{links}\n", encoding="utf-8")
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-I", "-c", FLASK_ONLY_APP],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "flask-only ok" in out.stdout
