"""The isolators appc 0.8.11 knows, each with the value its Go code takes
(schema/types/isolator*.go): the value may be any JSON, per isolator."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from acigen.appc_types import identifier
from acigen.jsoncheck import Node

# a resource quantity: a decimal with an optional suffix, as appc's parser
# reads it (a subset: no sign, no spaces, an exponent of at most 2 digits)
QUANTITY = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
                      r"(?:[numkMGTPE]|[KMGTPE]i|[eE][+-]?[0-9]{1,2})?")

# resource isolator -> the value its "default" must have
RESOURCE_DEFAULT = {
    "resource/cpu": False, "resource/memory": False,
    "resource/block-bandwidth": True, "resource/block-iops": True,
    "resource/network-bandwidth": True,
}
ONE_ONLY = ("os/linux/seccomp-retain-set", "os/linux/seccomp-remove-set",
            "os/linux/oom-score-adj", "os/linux/cpu-shares", "os/linux/selinux-context",
            "os/unix/sysctl")
CONFLICTS = {"os/linux/seccomp-retain-set": "os/linux/seccomp-remove-set",
             "os/linux/seccomp-remove-set": "os/linux/seccomp-retain-set"}


def check_resource(node: Node, name: str) -> None:
    fields = node.obj(optional=("default", "request", "limit"))
    wanted = RESOURCE_DEFAULT[name]
    default = fields["default"].boolean() if "default" in fields else False
    if default != wanted:
        raise node.error(f"{name}: default must be {str(wanted).lower()}")
    if wanted and "request" in fields:
        raise fields["request"].error(f"{name} takes no request, only a limit")
    for key in ("request", "limit"):
        if key in fields:
            check_quantity(fields[key])


def check_quantity(node: Node) -> None:
    if isinstance(node.value, int) and not isinstance(node.value, bool):
        node.integer(low=0)
        return
    text = node.string()
    if not QUANTITY.fullmatch(text):
        raise node.error(f"{text!r} is not a resource quantity",
                         "a number with an optional suffix: 500m, 1.5, 128Mi, 2G")


def check_capabilities(node: Node, name: str) -> None:
    fields = node.obj(required=("set",))
    if not fields["set"].strings():
        raise fields["set"].error(f"{name}: set must not be empty")


def check_seccomp(node: Node, name: str) -> None:
    fields = node.obj(required=("set",), optional=("errno",))
    if not fields["set"].strings():
        raise fields["set"].error(f"{name}: set must not be empty")
    errno = fields["errno"].string() if "errno" in fields else ""
    if errno and not (errno[0] == "E" and all(_upper_or_number(c) for c in errno)):
        raise fields["errno"].error(f"errno {errno!r} is not an errno name like EPERM")


def _upper_or_number(char: str) -> bool:
    # Go's unicode.IsUpper / unicode.IsNumber, which appc uses
    category = unicodedata.category(char)
    return category == "Lu" or category.startswith("N")


def check_selinux(node: Node, name: str) -> None:
    fields = node.obj(required=("user", "role", "type", "level"))
    for key in ("user", "role", "type", "level"):
        value = fields[key].string(non_empty=True)
        if key != "level" and ":" in value:
            raise fields[key].error(f"an SELinux {key} must not contain ':'")


def check_flag(node: Node, name: str) -> None:
    node.boolean()


def check_sysctl(node: Node, name: str) -> None:
    node.mapping()


def int_range(low: int, high: int) -> Callable[[Node, str], None]:
    def check(node: Node, name: str) -> None:
        value = node.integer()
        if not low <= value <= high:
            raise node.error(f"{name} must be between {low} and {high}, got {value}")
    return check


VALUE_CHECKS: dict[str, Callable[[Node, str], None]] = {
    **{name: check_resource for name in RESOURCE_DEFAULT},
    "os/linux/capabilities-retain-set": check_capabilities,
    "os/linux/capabilities-remove-set": check_capabilities,
    "os/linux/no-new-privileges": check_flag,
    "os/linux/seccomp-retain-set": check_seccomp,
    "os/linux/seccomp-remove-set": check_seccomp,
    "os/linux/oom-score-adj": int_range(-1000, 1000),
    "os/linux/cpu-shares": int_range(2, 262144),
    "os/linux/selinux-context": check_selinux,
    "os/unix/sysctl": check_sysctl,
}


def check_isolators(node: Node) -> None:
    seen: set[str] = set()
    for item in node.items():
        fields = item.obj(required=("name", "value"))
        name = identifier(fields["name"])
        if name not in VALUE_CHECKS:
            raise fields["name"].error(f"unknown isolator {name!r}",
                                       "appc 0.8.11 knows: " + ", ".join(VALUE_CHECKS))
        VALUE_CHECKS[name](fields["value"], name)
        if name in seen and name in ONE_ONLY:
            raise fields["name"].error(f"isolator {name!r} appears more than once")
        if CONFLICTS.get(name) in seen:
            raise fields["name"].error(f"isolators {name!r} and {CONFLICTS[name]!r} "
                                       "exclude each other")
        seen.add(name)
