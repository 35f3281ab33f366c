"""Validation of the appc `app` section (what the executor runs)."""

from __future__ import annotations

from acigen.appc_isolators import check_isolators
from acigen.appc_types import ENV_NAME, INT64_MAX, absolute_path, ac_name, unique
from acigen.jsoncheck import Node

APP_KEYS = ("exec", "user", "group", "supplementaryGIDs", "supplementaryGids",
            "eventHandlers", "workingDirectory", "environment", "isolators",
            "mountPoints", "ports", "userAnnotations", "userLabels")


def check_app(node: Node) -> None:
    fields = node.obj(required=("user", "group"), optional=APP_KEYS)
    if "exec" in fields:
        check_exec(fields["exec"])
    fields["user"].string(non_empty=True)
    fields["group"].string(non_empty=True)
    for key in ("supplementaryGIDs", "supplementaryGids"):
        if key in fields:
            for gid in fields[key].items():
                gid.integer(low=0, high=INT64_MAX)
    if "eventHandlers" in fields:
        check_event_handlers(fields["eventHandlers"])
    if "workingDirectory" in fields and fields["workingDirectory"].value != "":
        absolute_path(fields["workingDirectory"])  # appc: "" is the same as none
    if "environment" in fields:
        check_environment(fields["environment"])
    if "isolators" in fields:
        check_isolators(fields["isolators"])
    if "mountPoints" in fields:
        check_mount_points(fields["mountPoints"])
    if "ports" in fields:
        check_ports(fields["ports"])
    for key in ("userAnnotations", "userLabels"):
        if key in fields:
            fields[key].mapping()


def check_exec(node: Node) -> None:
    args = node.strings()  # appc: [] is the same as no exec
    if args and not args[0]:
        raise node.child(0).error("the program name must not be empty")


def check_event_handlers(node: Node) -> None:
    items = list(node.items())
    for item in items:
        fields = item.obj(required=("name", "exec"))
        name = fields["name"].string()
        if name not in ("pre-start", "post-stop"):
            raise fields["name"].error(f"unknown event handler {name!r}",
                                       "known: pre-start, post-stop")
        check_exec(fields["exec"])
    unique(items, "name", "event handler")


def check_environment(node: Node) -> None:
    items = list(node.items())
    for item in items:
        fields = item.obj(required=("name", "value"))
        name = fields["name"].string()
        if not ENV_NAME.fullmatch(name):
            raise fields["name"].error(f"{name!r} is not a valid environment variable name")
        fields["value"].string()
    unique(items, "name", "environment variable")


def check_mount_points(node: Node) -> None:
    items = list(node.items())
    for item in items:
        fields = item.obj(required=("name", "path"), optional=("readOnly",))
        ac_name(fields["name"])
        absolute_path(fields["path"])
        if "readOnly" in fields:
            fields["readOnly"].boolean()
    unique(items, "name", "mount point")


def check_ports(node: Node) -> None:
    items = list(node.items())
    for item in items:
        fields = item.obj(required=("name", "protocol", "port"),
                          optional=("count", "socketActivated"))
        ac_name(fields["name"])
        fields["protocol"].string(non_empty=True)
        port = fields["port"].integer(low=1, high=65535)
        count = fields["count"].integer(low=1) if "count" in fields else 1
        if port + count - 1 > 65535:
            raise item.error(f"ports {port}..{port + count - 1} go past 65535")
        if "socketActivated" in fields:
            fields["socketActivated"].boolean()
    unique(items, "name", "port")
