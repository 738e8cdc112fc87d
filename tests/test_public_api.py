"""The public surface of CONTRACT §1: `dingmw.__all__`, typing marker and packaged templates."""

from __future__ import annotations

import importlib.resources
import inspect

import dingmw
from dingmw import errors

# CONTRACT §1: the names a user imports from `dingmw`.
CONTRACT_NAMES = {
    "Settings",
    "Identity",
    "ASGIMiddleware",
    "WSGIMiddleware",
    "get_identity",
    "ConfigError",
}
ERROR_CLASSES = {
    name
    for name, obj in vars(errors).items()
    if inspect.isclass(obj) and issubclass(obj, errors.DingmwError)
}


def test_error_classes_are_found() -> None:
    assert {"DingmwError", "ConfigError", "LoginError", "UpstreamError"} <= ERROR_CLASSES


def test_all_is_exactly_the_contract_names_and_the_errors() -> None:
    assert set(dingmw.__all__) == CONTRACT_NAMES | ERROR_CLASSES | {"__version__"}
    assert len(dingmw.__all__) == len(set(dingmw.__all__))


def test_every_exported_name_exists() -> None:
    for name in dingmw.__all__:
        assert hasattr(dingmw, name), name


def test_star_import_gives_the_public_names() -> None:
    namespace: dict[str, object] = {}
    exec("from dingmw import *", namespace)  # noqa: S102  # the behaviour under test
    assert set(namespace) >= CONTRACT_NAMES


def test_error_classes_are_the_errors_module_ones() -> None:
    for name in ERROR_CLASSES:
        assert getattr(dingmw, name) is getattr(errors, name)


def test_config_error_is_a_value_error() -> None:
    assert issubclass(dingmw.ConfigError, ValueError)
    assert issubclass(dingmw.ConfigError, dingmw.DingmwError)


def test_version_is_a_string() -> None:
    assert isinstance(dingmw.__version__, str)
    assert dingmw.__version__.count(".") >= 1


def test_py_typed_ships() -> None:
    assert (importlib.resources.files("dingmw") / "py.typed").is_file()


def test_templates_ship() -> None:
    templates = importlib.resources.files("dingmw") / "templates"
    for name in ("base.html", "login.html", "error.html", "login.js"):
        resource = templates / name
        assert resource.is_file(), name
        assert resource.read_text("utf-8").strip(), name


def test_login_template_has_the_contract_config_block() -> None:
    text = (importlib.resources.files("dingmw") / "templates" / "login.html").read_text("utf-8")
    assert '<script id="dingmw-config" type="application/json">' in text
    assert "|tojson" in text
