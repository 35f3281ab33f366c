"""The step-kind registry (acigen/rules.py) and what must agree with it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from acigen.rules import HELPER_RULES, STEP_KINDS, console_scripts
from acigen.steps import PARSERS

tomllib = pytest.importorskip("tomllib")  # Python 3.11+
REPO = Path(__file__).resolve().parents[2]


def test_pyprojects_console_scripts_are_the_registrys() -> None:
    with open(REPO / "pyproject.toml", "rb") as src:
        scripts = tomllib.load(src)["project"]["scripts"]
    assert scripts == console_scripts()


def test_every_step_type_has_a_parser_and_a_kind() -> None:
    assert list(PARSERS) == list(STEP_KINDS)


@pytest.mark.parametrize("module", sorted({rule.module for rule in HELPER_RULES.values()}))
def test_every_rules_helper_is_a_runnable_package(module: str) -> None:
    assert importlib.util.find_spec(f"acigen.helpers.{module}.__main__") is not None


def test_helper_modules_and_layer_tags_are_unique() -> None:
    assert len({rule.module for rule in HELPER_RULES.values()}) == len(HELPER_RULES)
    tags = [kind.tag for kind in STEP_KINDS.values()]
    assert len(set(tags)) == len(tags)
