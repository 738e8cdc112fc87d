"""The `dingmw` command: demo, fake-dingtalk, hub, check."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from . import __version__
from .config import Settings
from .errors import ConfigError
from .serving import CannotListen, bind, browser_host


def _check(args: argparse.Namespace) -> int:
    import logging

    from .checks import run

    # The report says what failed; dingmw's own log lines (an expected 400 from the hub's
    # probe, say) are not for this terminal.
    logging.getLogger("dingmw").addHandler(logging.NullHandler())
    report = run(live=args.live, deploy=args.deploy, workers=args.workers)
    for problem in report.errors:
        print(f"dingmw check: configuration error: {problem}", file=sys.stderr)
    for warning in report.warnings:
        print(f"dingmw check: warning: {warning}", file=sys.stderr)
    for failure in report.live_failures:
        print(f"dingmw check --live: {failure}", file=sys.stderr)
    if report.errors:
        return report.exit_code(strict=args.strict)
    for line in report.lines:
        print(line)
    if args.live:
        if not report.live_failures:
            print("live check OK")
    elif args.deploy:
        print(f"configuration OK, {len(report.warnings)} deployment warning(s)")
    else:
        print("configuration OK (run with --live to prove the credentials with DingTalk)")
    return report.exit_code(strict=args.strict)


def _need_uvicorn(command: str) -> bool:
    """True when uvicorn is installed; else says how to install it."""
    try:
        import uvicorn  # noqa: F401
    except ImportError:
        print(
            f"dingmw {command} needs uvicorn, which is not installed. "
            "Install it with: pip install 'dingmw[server]' (or: pip install uvicorn)",
            file=sys.stderr,
        )
        return False
    return True


def _demo(args: argparse.Namespace) -> int:
    if not _need_uvicorn("demo"):
        return 2
    from .demo import run

    try:
        run(args.host, args.port, flow=args.flow)
    except CannotListen as exc:
        print(f"dingmw demo: {exc}", file=sys.stderr)
        return 1
    return 0


def _fake(args: argparse.Namespace) -> int:
    if not _need_uvicorn("fake-dingtalk"):
        return 2
    import uvicorn

    from .testing import FakeDingTalk

    try:
        sock = bind(args.host, args.port)
    except CannotListen as exc:
        print(f"dingmw fake-dingtalk: {exc}", file=sys.stderr)
        return 1
    print(f"fake DingTalk on http://{browser_host(args.host)}:{args.port}", flush=True)
    config = uvicorn.Config(FakeDingTalk().asgi_app, log_level="warning")
    uvicorn.Server(config).run(sockets=[sock])
    return 0


def _hub(args: argparse.Namespace) -> int:
    if not _need_uvicorn("hub"):
        return 2
    import uvicorn

    from .hub import create_app

    try:
        app = create_app(Settings.from_env())
    except ConfigError as exc:
        print(f"dingmw hub: configuration error: {exc}", file=sys.stderr)
        return 1
    try:
        sock = bind(args.host, args.port)
    except CannotListen as exc:
        print(f"dingmw hub: {exc}", file=sys.stderr)
        return 1
    print(f"dingmw hub on http://{browser_host(args.host)}:{args.port}", flush=True)
    config = uvicorn.Config(
        app,
        log_level="info",
        access_log=args.access_log,
        proxy_headers=False,  # DINGMW_TRUST_PROXY decides what forwarded headers mean
        server_header=False,
    )
    uvicorn.Server(config).run(sockets=[sock])
    return 0


def _workers_from_env() -> int:
    """`WEB_CONCURRENCY`, which gunicorn and uvicorn read for their number of workers."""
    try:
        return max(1, int(os.environ.get("WEB_CONCURRENCY", "1")))
    except ValueError:
        return 1


def parser() -> argparse.ArgumentParser:
    from .providers.registry import demo_flows

    root = argparse.ArgumentParser(prog="dingmw", description="DingTalk login for WSGI/ASGI apps")
    root.add_argument("--version", action="version", version=f"dingmw {__version__}")
    commands = root.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="run an example app and a fake DingTalk locally")
    demo.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    demo.add_argument(
        "--port",
        type=int,
        default=8000,
        help="port of the example app; the fake DingTalk takes a free one (default: %(default)s)",
    )
    demo.add_argument(
        "--flow",
        choices=demo_flows(),
        default="oauth2",
        help="the login flow to show (default: %(default)s)",
    )
    demo.set_defaults(run=_demo)

    fake = commands.add_parser("fake-dingtalk", help="run the fake DingTalk alone")
    fake.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    fake.add_argument(
        "--port", type=int, default=8001, help="port to listen on (default: %(default)s)"
    )
    fake.set_defaults(run=_fake)

    hub = commands.add_parser("hub", help="run the dingmw hub")
    hub.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    hub.add_argument(
        "--port", type=int, default=8080, help="port to listen on (default: %(default)s)"
    )
    hub.add_argument(
        "--no-access-log",
        dest="access_log",
        action="store_false",
        help="no access log line per request (when the proxy in front logs them already)",
    )
    hub.set_defaults(run=_hub)

    check = commands.add_parser(
        "check",
        help="validate the DINGMW_* configuration",
        description="Validate the DINGMW_* configuration. Exit status: 0 no error, 1 errors "
        "(with --strict: or warnings), 2 usage, 3 a --live probe failed.",
    )
    check.add_argument(
        "--live", action="store_true", help="also ping the store and fetch tokens from DingTalk"
    )
    check.add_argument(
        "--deploy", action="store_true", help="also warn about settings unfit for production"
    )
    check.add_argument(
        "--workers",
        type=int,
        default=_workers_from_env(),
        help="processes serving the app, for --deploy (default: $WEB_CONCURRENCY or 1)",
    )
    check.add_argument("--strict", action="store_true", help="exit with 1 on warnings too")
    check.set_defaults(run=_check)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    result: int = args.run(args)
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
