"""The sans-I/O core and the providers import no framework, template engine, store or socket.

`dingmw/core/drive.py` is excluded on purpose: it is the driver, the one
module that performs effects, and it needs `asyncio` and `threading` for
its locks. Only direct imports are checked; the package's `__init__` loads
the adapters anyway, so a transitive check cannot tell anything apart.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import dingmw

PACKAGE = Path(dingmw.__file__).resolve().parent
DRIVER = PACKAGE / "core" / "drive.py"
MODULES = sorted(
    path
    for folder in ("core", "providers")
    for path in (PACKAGE / folder).glob("*.py")
    if path != DRIVER
)

FORBIDDEN = (
    "starlette",
    "jinja2",
    "redis",
    "cachetools",
    "werkzeug",
    "socket",
    "asyncio",
    "threading",
    "requests",
    "aiohttp",
    "urllib3",
)
ALLOWED = (
    "werkzeug.http",
    "werkzeug.sansio.http",
    "werkzeug.datastructures",
)  # pure header parsing helpers
# Inside the package: the adapters, the renderer, concrete stores and the fake.
FORBIDDEN_INTERNAL = (
    "dingmw.asgi",
    "dingmw.wsgi",
    "dingmw.rendering",
    "dingmw.stores",
    "dingmw.testing",
    "dingmw.hub",
    "dingmw.cli",
)


def imported_modules(path: Path, source: str | None = None) -> list[str]:
    """Absolute names of everything `path` imports (relative imports resolved)."""
    package = ["dingmw", *path.relative_to(PACKAGE).parent.parts]
    text = path.read_text("utf-8") if source is None else source
    names: list[str] = []
    for node in ast.walk(ast.parse(text, str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            names.append(module)
            names.extend(f"{module}.{alias.name}" for alias in node.names)
    return names


def offending(name: str) -> bool:
    def under(prefixes: tuple[str, ...]) -> bool:
        return any(name == p or name.startswith(p + ".") for p in prefixes)

    if under(ALLOWED):
        return False
    return under(FORBIDDEN) or under(FORBIDDEN_INTERNAL)


def test_the_modules_are_found() -> None:
    names = {p.relative_to(PACKAGE).as_posix() for p in MODULES}
    assert {"core/flow.py", "core/state.py", "core/session.py", "providers/sns.py"} <= names
    assert "core/drive.py" not in names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_pure_module(path: Path) -> None:
    bad = sorted({name for name in imported_modules(path) if offending(name)})
    assert bad == [], f"{path.name} imports {bad}"


def test_the_checker_would_notice() -> None:
    source = "import threading\nfrom ..rendering import render\nfrom werkzeug.http import x\n"
    names = [n for n in imported_modules(PACKAGE / "core" / "flow.py", source) if offending(n)]
    assert "threading" in names
    assert "dingmw.rendering" in names
    assert not any(n.startswith("werkzeug") for n in names)
