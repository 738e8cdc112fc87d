"""docs/configuration.md holds the reference tables generated from the settings declarations."""

from __future__ import annotations

from pathlib import Path

from dingmw.declare import documented_blocks, expected_blocks, regenerate

DOC = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"


def test_every_declared_group_is_documented_once() -> None:
    found = [(cls, what) for cls, what, _ in documented_blocks(DOC.read_text(encoding="utf-8"))]
    assert sorted(found) == sorted(expected_blocks()), (
        "docs/configuration.md needs one '<!-- generated: Class / group -->' block per group "
        "of settings (and one '/ python' per class)"
    )


def test_the_tables_match_the_declarations() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert regenerate(text) == text, (
        "the configuration reference differs from dingmw/config.py: run scripts/config-docs"
    )
