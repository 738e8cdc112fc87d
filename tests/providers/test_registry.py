"""The flow registry: each flow declared once in its module; nobody else tests a flow's name."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import get_args

import httpx
import pytest

from dingmw.config import Flow, Settings
from dingmw.core.effects import Effect, Reply
from dingmw.errors import ConfigError
from dingmw.providers import registry

from .helpers import make_settings

PACKAGE = Path(__file__).resolve().parents[2] / "dingmw"


def test_the_flow_type_lists_the_registered_flows() -> None:
    assert registry.names() == get_args(Flow)


def test_every_flow_declares_a_provider_and_a_probe() -> None:
    for name, flow in registry.flows().items():
        assert flow.name == name
        settings = make_settings(flow=name, hub_url="https://hub.example.com")
        assert flow.make(settings, lambda: 0.0).flow == name
        assert callable(flow.probe)


def test_the_demo_offers_the_flows_that_have_a_qr_stand_in() -> None:
    assert registry.demo_flows() == ("oauth2", "sns", "bycode")


def test_rules_of_a_flow_come_from_its_module() -> None:
    with pytest.raises(ConfigError, match="DINGMW_HUB_URL is required when DINGMW_FLOW=hub"):
        make_settings(flow="hub")


def _flow_name_comparisons(tree: ast.AST, names: set[str]) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        sides = [node.left, *node.comparators]
        texts = {
            n.value
            for side in sides
            for n in ast.walk(side)
            if isinstance(n, ast.Constant) and isinstance(n.value, str)
        }
        reads_flow = any(
            (isinstance(side, ast.Attribute) and side.attr == "flow")
            or (isinstance(side, ast.Name) and side.id == "flow")
            for side in sides
        )
        if reads_flow and texts & names:
            lines.append(node.lineno)
    return lines


def test_no_module_outside_the_providers_tests_a_flow_name() -> None:
    names = set(registry.names())
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if "providers" in path.relative_to(PACKAGE).parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        offenders += [
            f"{path.relative_to(PACKAGE)}:{n}" for n in _flow_name_comparisons(tree, names)
        ]
    assert offenders == [], "ask dingmw.providers.registry instead"


def _calls(settings: Settings) -> list[str]:
    """The calls `dingmw check --live` makes, answered with a token each time."""
    made: list[str] = []
    flow = registry.live_check(settings)
    reply: Reply = None
    try:
        while True:
            effect: Effect = flow.send(reply)
            assert isinstance(effect, httpx.Request)
            made.append(effect.url.path)
            body = {"errcode": 0, "access_token": "t", "accessToken": "t", "expires_in": 7200}
            reply = httpx.Response(200, json=body, request=effect)
    except StopIteration as done:
        results = done.value
    assert len(results) == len(made)  # one line of proof per call
    return made


@pytest.mark.parametrize(
    ("overrides", "paths"),
    [
        pytest.param({}, ["/v1.0/oauth2/accessToken"], id="oauth2"),
        pytest.param({"flow": "sns"}, ["/sns/gettoken"], id="sns"),
        pytest.param({"flow": "bycode"}, ["/sns/gettoken"], id="bycode"),
        pytest.param({"enrich": "detail"}, ["/v1.0/oauth2/accessToken", "/gettoken"], id="enrich"),
        pytest.param(
            {"corp_id": "dingcorp"}, ["/v1.0/oauth2/accessToken", "/gettoken"], id="inclient"
        ),
        pytest.param(
            {"corp_id": "dingcorp", "enrich": "detail"},
            ["/v1.0/oauth2/accessToken", "/gettoken"],
            id="both-need-the-corp-token-once",
        ),
    ],
)
def test_live_check_runs_the_probes_of_the_flow_and_its_options(
    overrides: dict[str, str], paths: list[str]
) -> None:
    assert _calls(make_settings(**overrides)) == paths
