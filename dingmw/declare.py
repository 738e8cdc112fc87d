"""Settings declared once.

A settings class is a frozen dataclass made with `@declared`; each field is a
`setting(...)` that says everything about one `DINGMW_*` variable: its name, its
kind (how the text of the variable becomes a value and what a valid value is), its
default, an extra rule, its help text, its documentation group and whether it is a
secret. From that one declaration come:

- `from_env(cls, environ)`: read, parse and validate every variable;
- validation of a directly built instance (`__post_init__`), with the same rules;
- `problems(cls, environ)`: every problem at once, for `dingmw check`;
- `shown(instance)`: the values as `dingmw check` prints them, secrets masked;
- `reference(cls, group)`: the tables of docs/configuration.md (a test compares them).

Rules that involve several settings are methods marked `@cross_check("field", ...)`:
they run only when the fields they read are valid on their own.

Messages always name the variable and never contain the value of a secret.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import math
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Generic, TypeVar, dataclass_transform
from urllib.parse import urlsplit

from .errors import ConfigError

T = TypeVar("T")
C = TypeVar("C")

PREFIX = "DINGMW_"
# Modules that declare settings classes: every variable they declare is known, so
# that a typo in any of them is reported against all of them.
DECLARING_MODULES: tuple[str, ...] = ("dingmw.config", "dingmw.hub.settings")

log = logging.getLogger("dingmw.config")

_META = "dingmw.setting"
_CROSS = "_dingmw_cross_check"
_REGISTRY: list[type[Any]] = []


class Invalid(ValueError):
    """Raised by a kind's `parse`: the rest of a message that starts with the variable."""


# --- kinds ------------------------------------------------------------------------------------


class Kind(Generic[T]):
    """How the text of a variable becomes a value, and what a valid value is."""

    #: how the value is written, for the reference table
    describe: str = "text"

    def parse(self, raw: str) -> T:
        """The value of a non-empty, stripped variable; raise `Invalid` when it is malformed."""
        return raw  # type: ignore[return-value]  # Kind[str] by default

    def check(self, value: T) -> str | None:
        """What is wrong with a value (also one given to the constructor), or `None`."""
        return None

    def show(self, value: T) -> str:
        """The value as `dingmw check` prints it (a non-secret value)."""
        if isinstance(value, tuple | frozenset | set):
            return ", ".join(sorted(str(item) for item in value)) or "(none)"
        return str(value)


class Text(Kind[str]):
    describe = "text"


class Choice(Kind[str]):
    """One of a few names, case-insensitive in the environment. `among` gives the names when
    they are known only later (e.g. the login flows, from their registry)."""

    def __init__(self, *choices: str, among: Callable[[], Sequence[str]] | None = None) -> None:
        self._choices = choices
        self._among = among

    @property
    def choices(self) -> tuple[str, ...]:
        return tuple(self._among()) if self._among is not None else self._choices

    @property
    def describe(self) -> str:  # type: ignore[override]  # computed from the choices
        return "one of " + ", ".join(f"`{c}`" for c in self.choices)

    def parse(self, raw: str) -> str:
        return raw.lower()

    def check(self, value: str) -> str | None:
        if value not in self.choices:
            return f"must be one of {', '.join(self.choices)}"
        return None


class Flag(Kind[bool]):
    describe = "`1`, `true`, `yes`, `on` or `0`, `false`, `no`, `off`"
    _TRUE = frozenset({"1", "true", "yes", "on"})
    _FALSE = frozenset({"0", "false", "no", "off"})

    def parse(self, raw: str) -> bool:
        value = raw.lower()
        if value in self._TRUE:
            return True
        if value in self._FALSE:
            return False
        raise Invalid("must be 1/true or 0/false")

    def show(self, value: bool) -> str:
        return "1" if value else "0"


class Seconds(Kind[int]):
    """A positive whole number of seconds."""

    describe = "a whole number of seconds, more than 0"

    def parse(self, raw: str) -> int:
        try:
            return int(raw)
        except ValueError:
            raise Invalid("must be a whole number of seconds") from None

    def check(self, value: int) -> str | None:
        if value <= 0:
            return "must be a positive number of seconds"
        return None


class Duration(Kind[float]):
    """A positive, finite number of seconds."""

    describe = "a number of seconds, more than 0"

    def parse(self, raw: str) -> float:
        try:
            return float(raw)
        except ValueError:
            raise Invalid("must be a number of seconds") from None

    def check(self, value: float) -> str | None:
        if not math.isfinite(value) or value <= 0:
            return "must be a positive number of seconds"
        return None

    def show(self, value: float) -> str:
        return f"{value:g}"


class Items(Kind[tuple[str, ...]]):
    """A comma-separated list; spaces around items and empty items are dropped."""

    describe = "comma-separated list"

    def parse(self, raw: str) -> tuple[str, ...]:
        return tuple(item.strip() for item in raw.split(",") if item.strip())

    def show(self, value: tuple[str, ...]) -> str:
        return ", ".join(value) or "(none)"


class NameSet(Kind[frozenset[str]]):
    describe = "comma-separated list"

    def parse(self, raw: str) -> frozenset[str]:
        return frozenset(Items().parse(raw))


class NumberSet(Kind[frozenset[int]]):
    describe = "comma-separated list of numbers"

    def parse(self, raw: str) -> frozenset[int]:
        try:
            return frozenset(int(item) for item in Items().parse(raw))
        except ValueError:
            raise Invalid("must be comma-separated numbers") from None


class Url(Kind[str]):
    """An absolute http(s) URL without query or fragment; a trailing `/` is removed."""

    describe = "absolute http(s) URL, no query or fragment; a trailing `/` is removed"

    def parse(self, raw: str) -> str:
        return raw.rstrip("/")

    def check(self, value: str) -> str | None:
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018  # raises ValueError on a port that is not a number
        except ValueError:
            return "is not a valid URL (check its brackets and port)"
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return "must be an absolute http(s) URL"
        if parts.query or parts.fragment:
            return "must not have a query or fragment"
        return None

    def show(self, value: str) -> str:
        return without_password(value)


def without_password(url: str) -> str:
    """`url` without user, password, query or fragment (any of which may hold a secret)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "(not a URL)"
    rest = rest.split("?", 1)[0].split("#", 1)[0].rpartition("@")[2]
    return f"{scheme}://{rest}"


# --- declarations -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Spec:
    """Everything about one setting; `setting()` records it in the field's metadata."""

    env: str | None  # None: only settable in Python
    kind: Kind[Any]
    help: str
    group: str
    secret: bool
    required: bool
    rule: Callable[[Any], str | None] | None
    default_doc: str | None

    def label(self, field: str) -> str:
        return self.env or field

    def message(self, field: str, tail: str) -> str:
        sep = "" if tail.startswith((":", ",", "=")) else " "
        return f"{self.label(field)}{sep}{tail}"


def setting(
    *,
    help: str,  # the help text, as argparse calls it
    group: str,
    kind: Kind[Any] | None = None,
    env: str | None = None,
    default: Any = dataclasses.MISSING,
    secret: bool = False,
    rule: Callable[[Any], str | None] | None = None,
    default_doc: str | None = None,
) -> Any:
    """Declare one setting (a dataclass field). Without `default` it is required."""
    spec = Spec(
        env=env,
        kind=kind or Text(),
        help=help,
        group=group,
        secret=secret,
        required=default is dataclasses.MISSING,
        rule=rule,
        default_doc=default_doc,
    )
    return dataclasses.field(default=default, repr=not secret, metadata={_META: spec})


def cross_check(*fields: str) -> Callable[[Callable[[C], str | None]], Callable[[C], str | None]]:
    """Mark a method as a rule over several settings; it reads only `fields`."""

    def mark(method: Callable[[C], str | None]) -> Callable[[C], str | None]:
        setattr(method, _CROSS, fields)
        return method

    return mark


@dataclass_transform(
    kw_only_default=True, frozen_default=True, field_specifiers=(setting, dataclasses.field)
)
def declared(cls: type[C]) -> type[C]:
    """Make `cls` a frozen, keyword-only dataclass of declared settings."""
    if "__post_init__" not in cls.__dict__:
        cls.__post_init__ = _post_init  # type: ignore[attr-defined]
    made = dataclasses.dataclass(frozen=True, slots=True, kw_only=True)(cls)
    _REGISTRY.append(made)
    return made


def specs(cls: type[Any]) -> Iterator[tuple[str, Spec]]:
    """(field name, spec) of every declared setting of `cls`, in declaration order."""
    for field in dataclasses.fields(cls):
        spec = field.metadata.get(_META)
        if spec is not None:
            yield field.name, spec


def _cross_checks(cls: type[Any]) -> Iterator[tuple[tuple[str, ...], Callable[[Any], str | None]]]:
    for name in dir(cls):
        method = getattr(cls, name, None)
        fields = getattr(method, _CROSS, None)
        if fields is not None and callable(method):
            yield fields, method


# --- validation -------------------------------------------------------------------------------


def _field_problem(name: str, spec: Spec, value: Any) -> str | None:
    if spec.required and not value and value is not False:
        return f"{spec.label(name)} is required"
    if value is None:
        return None
    tail = spec.kind.check(value)
    if tail is None and spec.rule is not None:
        tail = spec.rule(value)
    return None if tail is None else spec.message(name, tail)


def _problems_of(instance: Any, failed: Mapping[str, str] | None = None) -> list[str]:
    """Every problem of an instance, in declaration order; `failed` holds the problems already
    found for fields that could not be read (their rules, and rules reading them, are skipped)."""
    bad = dict(failed or {})
    found = []
    for name, spec in specs(type(instance)):
        problem = bad.get(name) or _field_problem(name, spec, getattr(instance, name))
        if problem:
            found.append(problem)
            bad[name] = problem
    for fields, method in _cross_checks(type(instance)):
        if not set(bad).intersection(fields):
            problem = method(instance)
            if problem:
                found.append(problem)
    return found


def _post_init(self: Any) -> None:
    problems = _problems_of(self)
    if problems:
        raise config_error(problems)


def config_error(problems: Sequence[str]) -> ConfigError:
    return ConfigError("; ".join(problems), problems)


# --- reading the environment ------------------------------------------------------------------


def _read(cls: type[Any], env: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Parsed values of the variables that are set, and a problem for each malformed one."""
    values: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for name, spec in specs(cls):
        if spec.env is None:
            continue
        raw = (env.get(spec.env) or "").strip()
        if not raw:
            if spec.required:
                problems[name] = f"{spec.env} is required"
            continue
        try:
            values[name] = spec.kind.parse(raw)
        except ConfigError as exc:  # a kind that names the variable itself
            problems[name] = str(exc)
        except Invalid as exc:
            problems[name] = spec.message(name, str(exc))
        except ValueError:
            problems[name] = f"{spec.env} has a value that cannot be read"
    return values, problems


def problems(cls: type[C], environ: Mapping[str, str] | None = None) -> tuple[C | None, list[str]]:
    """Every problem of the environment at once, and the settings when there is none."""
    env = os.environ if environ is None else environ
    values, parse_problems = _read(cls, env)
    if not parse_problems:
        try:
            return cls(**values), []
        except ConfigError as exc:
            return None, list(getattr(exc, "problems", (str(exc),)))
    # Check what did parse, as if built, skipping rules that read a malformed field.
    partial = object.__new__(cls)
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]  # a dataclass
        default = field.default if field.default is not dataclasses.MISSING else None
        object.__setattr__(partial, field.name, values.get(field.name, default))
    return None, _problems_of(partial, failed=parse_problems)


def from_env(cls: type[C], environ: Mapping[str, str] | None = None) -> C:
    """Read every declared `DINGMW_*` variable of `cls` from `environ` (default `os.environ`).

    Unknown `DINGMW_*` variables are logged as a warning with the closest known name.
    """
    env = os.environ if environ is None else environ
    for warning in unknown_variables(env):
        log.warning("%s", warning)
    settings, found = problems(cls, env)
    if settings is None:
        raise config_error(found)
    return settings


def known_variables() -> set[str]:
    """Every variable declared by every settings class of dingmw."""
    return {spec.env for cls in declared_classes() for _, spec in specs(cls) if spec.env}


def declared_classes() -> list[type[Any]]:
    """The settings classes of dingmw (those declared in `DECLARING_MODULES`)."""
    import importlib

    for module in DECLARING_MODULES:
        importlib.import_module(module)
    return [cls for cls in _REGISTRY if cls.__module__ in DECLARING_MODULES]


def unknown_variables(env: Mapping[str, str]) -> list[str]:
    """A line for each `DINGMW_*` variable no settings class declares, with a likely fix."""
    known = known_variables()
    lines = []
    for name in sorted(n for n in env if n.startswith(PREFIX) and n not in known):
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
        hint = f" (did you mean {close[0]}?)" if close else ""
        lines.append(f"{name} is not a dingmw setting and is ignored{hint}")
    return lines


# --- showing and documenting ------------------------------------------------------------------


def shown(instance: Any, environ: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """(variable, value) for each variable set in the environment (or every one that differs
    from its default), as `dingmw check` prints them; a secret shows only its length."""
    env = os.environ if environ is None else environ
    rows = []
    for field in dataclasses.fields(instance):
        spec = field.metadata.get(_META)
        if spec is None or spec.env is None:
            continue
        value = getattr(instance, field.name)
        if not (env.get(spec.env) or "").strip() and value == field.default:
            continue
        rows.append((spec.env, _show(spec, value)))
    return rows


def _show(spec: Spec, value: Any) -> str:
    if value is None:
        return "(none)"
    if spec.secret:
        if isinstance(value, tuple):
            return f"(secret: {len(value)} value{'s' if len(value) != 1 else ''})"
        size = len(str(value))
        return f"(secret: {size} character{'s' if size != 1 else ''})"
    return spec.kind.show(value)


def groups(cls: type[Any]) -> list[str]:
    seen: dict[str, None] = {}
    for _, spec in specs(cls):
        if spec.env:
            seen.setdefault(spec.group)
    return list(seen)


def _default_doc(field: dataclasses.Field[Any], spec: Spec) -> str:
    if spec.default_doc is not None:
        return spec.default_doc
    if spec.required:
        return "required"
    value = field.default
    if value is None or value in ((), frozenset()):
        return "none"
    if isinstance(value, bool):
        return f"`{'1' if value else '0'}`"
    return f"`{spec.kind.show(value)}`"


def reference(cls: type[Any], group: str) -> str:
    """The Markdown table of one group of settings, as docs/configuration.md holds it."""
    lines = ["| variable | meaning | default | value |", "|---|---|---|---|"]
    for field in dataclasses.fields(cls):
        spec = field.metadata.get(_META)
        if spec is None or spec.env is None or spec.group != group:
            continue
        value = spec.kind.describe + ("; a secret, never shown" if spec.secret else "")
        lines.append(f"| `{spec.env}` | {spec.help} | {_default_doc(field, spec)} | {value} |")
    return "\n".join(lines)


def python_reference(cls: type[Any]) -> str:
    """The table of variables and `cls(...)` fields with their Python types."""
    lines = [f"| variable | `{cls.__name__}` field | type |", "|---|---|---|"]
    for field in dataclasses.fields(cls):
        spec = field.metadata.get(_META)
        if spec is None:
            continue
        variable = f"`{spec.env}`"
        if not spec.env:
            variable = f"(none: {spec.help}; default {_default_doc(field, spec)})"
        kind = str(field.type).replace("|", "\\|")
        if isinstance(spec.kind, Choice):
            kind = ", ".join(f'`"{c}"`' for c in spec.kind.choices)
        else:
            kind = f"`{kind}`"
        lines.append(f"| {variable} | `{field.name}` | {kind} |")
    return "\n".join(lines)


# Generated blocks of the documentation: `<!-- generated: Settings / Credentials -->` (a group's
# table) or `<!-- generated: Settings / python -->` (the fields), up to `<!-- end generated -->`.
_BLOCK = re.compile(
    r"(<!-- generated: (?P<cls>\w+) / (?P<what>[^>]+?) -->\n)(?P<body>.*?)(<!-- end generated -->)",
    re.DOTALL,
)


def _generated(cls: type[Any], what: str) -> str:
    return python_reference(cls) if what == "python" else reference(cls, what)


def documented_blocks(text: str) -> list[tuple[str, str, str]]:
    """(class name, group or "python", body) of every generated block in `text`."""
    return [(m["cls"], m["what"], m["body"]) for m in _BLOCK.finditer(text)]


def expected_blocks() -> list[tuple[str, str]]:
    """Every (class name, group or "python") the documentation must hold."""
    return [(cls.__name__, what) for cls in declared_classes() for what in [*groups(cls), "python"]]


def regenerate(text: str) -> str:
    """`text` with every generated block rewritten from the declarations."""
    classes = {cls.__name__: cls for cls in declared_classes()}

    def block(match: re.Match[str]) -> str:
        cls = classes.get(match["cls"])
        if cls is None:
            raise ValueError(f"no settings class named {match['cls']}")
        return f"{match[1]}{_generated(cls, match['what'])}\n{match[5]}"

    return _BLOCK.sub(block, text)
