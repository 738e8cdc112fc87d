"""The `dingmw` command: demo, fake-dingtalk, hub, check."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .config import Settings
from .errors import ConfigError, LoginError


def _check(args: argparse.Namespace) -> int:
    from .checks import describe, live_check, problems

    settings, found = problems()
    for problem in found:
        print(f"dingmw check: configuration error: {problem}", file=sys.stderr)
    if settings is None or found:
        return 1
    for line in describe(settings):
        print(line)
    if not args.live:
        print("configuration OK (run with --live to prove the credentials with DingTalk)")
        return 0
    import httpx

    from .core.drive import SyncRunner
    from .stores.memory import MemoryStore

    with httpx.Client(timeout=settings.http_timeout) as client:
        try:
            results = SyncRunner(client, MemoryStore()).run(live_check(settings))
        except LoginError as exc:
            call = exc.params.get("call", "")
            where = f" ({call})" if call else ""
            print(f"dingmw check --live: {exc.reason}{where}: {exc.detail}", file=sys.stderr)
            return 1
    for line in results:
        print(line)
    print("live check OK")
    return 0


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

    run(args.host, args.port, flow=args.flow)
    return 0


def _fake(args: argparse.Namespace) -> int:
    if not _need_uvicorn("fake-dingtalk"):
        return 2
    import uvicorn

    from .testing import FakeDingTalk

    print(f"fake DingTalk on http://{args.host}:{args.port}", flush=True)
    uvicorn.run(FakeDingTalk().asgi_app, host=args.host, port=args.port, log_level="warning")
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
    print(f"dingmw hub on http://{args.host}:{args.port}", flush=True)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="info",
        proxy_headers=False,  # DINGMW_TRUST_PROXY decides what forwarded headers mean
        server_header=False,
    )
    return 0


def parser() -> argparse.ArgumentParser:
    from .providers.registry import demo_flows

    root = argparse.ArgumentParser(prog="dingmw", description="DingTalk login for WSGI/ASGI apps")
    commands = root.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="run an example app and a fake DingTalk locally")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--flow", choices=demo_flows(), default="oauth2")
    demo.set_defaults(run=_demo)

    fake = commands.add_parser("fake-dingtalk", help="run the fake DingTalk alone")
    fake.add_argument("--host", default="127.0.0.1")
    fake.add_argument("--port", type=int, default=8001)
    fake.set_defaults(run=_fake)

    hub = commands.add_parser("hub", help="run the dingmw hub")
    hub.add_argument("--host", default="127.0.0.1")
    hub.add_argument("--port", type=int, default=8080)
    hub.set_defaults(run=_hub)

    check = commands.add_parser("check", help="validate the DINGMW_* configuration")
    check.add_argument("--live", action="store_true", help="also fetch a token from DingTalk")
    check.set_defaults(run=_check)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    result: int = args.run(args)
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
