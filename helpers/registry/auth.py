"""Credentials and TLS for registries, as the containers tools find them.

Settings (written by acigen into the spec files, from its options):

    {"tls_verify": true, "ca_bundle": null, "auth_file": null}

Credentials come from the first auth file that names the registry:
`auth_file` (acigen's `--authfile`), `$REGISTRY_AUTH_FILE`,
`$XDG_RUNTIME_DIR/containers/auth.json`, `~/.config/containers/auth.json`,
`~/.docker/config.json` (of the user running the build: root's under
sudo).  An entry is `{"auth": base64("user:password")}` (what `podman
login` and `docker login` write) or `{"username": ..., "password": ...}`.
Credential helpers (`credHelpers`, `credsStore`) are not run.

TLS: the system's CA certificates, or `ca_bundle` (a PEM file) instead;
`tls_verify: false` (only when asked: `--tls-verify=false`) skips the
check and lets a registry that speaks only plain HTTP be used, as skopeo's
`--tls-verify=false` does.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from typing import Any

from acigen.errors import HelperError


@dataclass(frozen=True)
class Settings:
    tls_verify: bool = True
    ca_bundle: str | None = None
    auth_file: str | None = None

    @classmethod
    def from_json(cls, data: Any) -> Settings:
        if not isinstance(data, dict):
            return cls()
        return cls(data.get("tls_verify", True) is not False, data.get("ca_bundle"),
                   data.get("auth_file"))

    def to_json(self) -> dict[str, Any]:
        return {"tls_verify": self.tls_verify, "ca_bundle": self.ca_bundle,
                "auth_file": self.auth_file}

    def verify(self) -> bool | str:
        """requests' `verify`: the CA bundle, the system's, or no check."""
        if not self.tls_verify:
            return False
        return self.ca_bundle or True


def auth_files(settings: Settings) -> list[str]:
    """Where credentials may be, in the order they are looked at."""
    home = os.path.expanduser("~")
    found = [settings.auth_file, os.environ.get("REGISTRY_AUTH_FILE")]
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        found.append(os.path.join(runtime, "containers", "auth.json"))
    found += [os.path.join(home, ".config", "containers", "auth.json"),
              os.path.join(home, ".docker", "config.json")]
    return [path for path in found if path]


def _host_of(key: str) -> str:
    """An auths key ("host", "https://host/v1/", "host/namespace") -> host."""
    key = key.split("://", 1)[-1]
    return key.split("/", 1)[0]


def _read(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as src:
            data = json.load(src)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise HelperError(f"{path}: cannot read the registry auth file ({exc})") from None
    auths = data.get("auths") if isinstance(data, dict) else None
    return auths if isinstance(auths, dict) else None


def _decode(entry: Any, path: str, host: str) -> tuple[str, str]:
    if isinstance(entry, dict) and isinstance(entry.get("auth"), str) and entry["auth"]:
        try:
            user, sep, password = base64.b64decode(entry["auth"]).decode().partition(":")
        except ValueError:
            sep = ""
        if not sep:
            raise HelperError(f"{path}: the entry for {host} is not base64 of user:password")
        return user, password
    if isinstance(entry, dict) and isinstance(entry.get("username"), str):
        return entry["username"], str(entry.get("password", ""))
    raise HelperError(f"{path}: the entry for {host} has no credentials")


def credentials(host: str, settings: Settings) -> tuple[tuple[str, str], str] | None:
    """((user, password), the file they came from) for HOST, if any file names it."""
    for path in auth_files(settings):
        auths = _read(path)
        if not auths:
            continue
        for key in sorted(auths):
            if _host_of(key) == host:
                return _decode(auths[key], path, host), path
    return None
