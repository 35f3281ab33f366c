"""The appc spec's basic value types (AC Identifier, AC Name, paths, unique
lists), checked as appc's Go code checks them; shared by the manifest's
sections (appc.py, appc_app.py, appc_isolators.py)."""

from __future__ import annotations

import re

from acigen.jsoncheck import Node

# appc's checks: only these characters, no separator at either end
# (fullmatch: a Python `$` would let a final newline through)
AC_IDENTIFIER = re.compile(r"[a-z0-9]([a-z0-9._~/-]*[a-z0-9])?")
AC_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z_0-9.-]*")
IMAGE_ID = re.compile(r"sha512-[0-9a-fA-F]+")
UINT64_MAX = 2**64 - 1
INT64_MAX = 2**63 - 1


def identifier(node: Node, what: str = "an AC Identifier") -> str:
    value = node.string()
    if not AC_IDENTIFIER.fullmatch(value):
        raise node.error(f"{value!r} is not {what}",
                         "lowercase letters, digits and -._~/, starting and ending "
                         "with a letter or digit")
    return value


def ac_name(node: Node) -> str:
    value = node.string()
    if not AC_NAME.fullmatch(value):
        raise node.error(f"{value!r} is not an AC Name",
                         "lowercase letters, digits and -, starting and ending with a "
                         "letter or digit")
    return value


def absolute_path(node: Node) -> str:
    value = node.string()
    if not value.startswith("/"):
        raise node.error(f"{value!r} is not an absolute path")
    return value


def unique(nodes: list[Node], key: str, what: str) -> None:
    seen: set[str] = set()
    for node in nodes:
        name = node.value[key]
        if name in seen:
            raise node.child(key).error(f"{what} {name!r} appears more than once")
        seen.add(name)
