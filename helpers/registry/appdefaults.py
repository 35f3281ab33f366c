"""An OCI base image's config as defaults for the ACI's `app`.

The `image` step with `oci` keeps the base's run settings beside its layer
(LAYER/image-config.json).  When the image is packed (ACI and --oci alike),
they fill in what the manifest's own `app` does not say, never more:

- no `app` at all: an app from the config: `exec` = Entrypoint + Cmd,
  `user`/`group` from User ("u:g"; "u" alone: group the same; none: 0:0),
  and the fields below;
- an `app`: only the fields it lacks among `exec`, `environment` (from Env),
  `workingDirectory` (WorkingDir) and `ports` (ExposedPorts, named
  PROTOCOL-PORT).  `user` and `group` are the manifest's (appc requires them).

A relative program (Cmd ["bash"]) is looked up in the config's PATH in the
image's layers; one not found is not offered.  Env entries whose names appc
refuses are left out.  What was taken is printed by pack, one line.
"""

from __future__ import annotations

import copy
import json
import os
import re
from typing import Any

from acigen.helpers.rootfs.root import is_executable
from acigen.specs import DEFAULT_PATH

CONFIG_FILE = "image-config.json"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z_0-9.-]*$")
APP_FIELDS = ("exec", "environment", "workingDirectory", "ports")


def base_config(layer_dirs: list[str]) -> dict[str, Any] | None:
    """The run config the nearest OCI image step kept, if any."""
    for layer in layer_dirs:
        path = os.path.join(layer, CONFIG_FILE)
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as src:
                data = json.load(src)
            return data if isinstance(data, dict) else None
    return None


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _environment(run: dict[str, Any]) -> list[dict[str, str]]:
    out, seen = [], set()
    for item in _strings(run.get("Env")):
        name, sep, value = item.partition("=")
        if sep and _ENV_NAME.fullmatch(name) and name not in seen:
            seen.add(name)
            out.append({"name": name, "value": value})
    return out


def _ports(run: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    exposed = run.get("ExposedPorts")
    for key in sorted(exposed) if isinstance(exposed, dict) else []:
        number, _, protocol = str(key).partition("/")
        protocol = protocol or "tcp"
        if number.isdigit() and 1 <= int(number) <= 65535 and protocol in ("tcp", "udp"):
            out.append({"name": f"{protocol}-{int(number)}", "port": int(number),
                        "protocol": protocol})
    return out


def _find_program(name: str, env: list[dict[str, str]], layer_dirs: list[str]) -> str | None:
    path = next((e["value"] for e in env if e["name"] == "PATH"), DEFAULT_PATH)
    for directory in path.split(":"):
        if not directory.startswith("/"):
            continue
        candidate = f"{directory.rstrip('/')}/{name}"
        for layer in layer_dirs:
            tree = os.path.join(layer, "tree")
            if os.path.isdir(tree) and is_executable(tree, candidate):
                return candidate
    return None


def offered(run: dict[str, Any], layer_dirs: list[str]) -> dict[str, Any]:
    """The app fields RUN offers (user and group apart)."""
    app: dict[str, Any] = {}
    env = _environment(run)
    command = _strings(run.get("Entrypoint")) + _strings(run.get("Cmd"))
    if command and not command[0].startswith("/") and "/" not in command[0]:
        found = _find_program(command[0], env, layer_dirs)
        command = [found, *command[1:]] if found else []
    if command and command[0].startswith("/"):
        app["exec"] = command
    if env:
        app["environment"] = env
    workdir = run.get("WorkingDir")
    if isinstance(workdir, str) and workdir.startswith("/"):
        app["workingDirectory"] = workdir
    if _ports(run):
        app["ports"] = _ports(run)
    return app


def _owner(run: dict[str, Any]) -> tuple[str, str]:
    user = run.get("User") if isinstance(run.get("User"), str) else ""
    name, _, group = user.partition(":")
    return (name or "0", group or name or "0")


def with_base_defaults(manifest: dict[str, Any], layer_dirs: list[str]
                       ) -> tuple[dict[str, Any], list[str]]:
    """MANIFEST with its app completed from the base image's config: (the
    manifest, the fields taken)."""
    run = base_config(layer_dirs)
    if not run:
        return manifest, []
    fields = offered(run, layer_dirs)
    result = copy.deepcopy(manifest)
    app = result.get("app")
    if app is None:
        user, group = _owner(run)
        result["app"] = {**fields, "user": user, "group": group}
        return result, [*fields, "user", "group"]
    taken = [key for key in APP_FIELDS if key in fields and key not in app]
    for key in taken:
        app[key] = fields[key]
    return result, taken


def note(out: str, taken: list[str]) -> str:
    return (f"{os.path.basename(out)}: from the base image's config, where the manifest's "
            f"app says nothing: {', '.join(taken)}")
