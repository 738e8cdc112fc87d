"""Developer sessions: `nox -s tests lint typecheck e2e demo bench`."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.default_venv_backend = "venv"


def _install(session: nox.Session, *groups: str) -> None:
    session.install("--upgrade", "pip>=25.1")
    args = ["-e", "."]
    for group in groups:
        args += ["--group", group]
    session.install(*args)


@nox.session
def tests(session: nox.Session) -> None:
    """The whole suite, browser and Redis tests included."""
    _install(session, "test")
    session.run("pytest", *session.posargs)


@nox.session
def e2e(session: nox.Session) -> None:
    """Only the tests that drive a real headless Chromium."""
    _install(session, "test")
    session.run("pytest", "-m", "browser", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    _install(session, "typing", "test")
    session.run("mypy")


@nox.session
def bench(session: nox.Session) -> None:
    """The benchmarks P1-P4 (tables and PNG charts in bench/out/); `-- --smoke` for CI's."""
    _install(session, "bench")
    session.run("python", "bench/run_all.py", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """`dingmw demo` (pass --port etc. after `--`)."""
    session.install("-e", ".")
    session.run("dingmw", "demo", *session.posargs)
