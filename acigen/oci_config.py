"""An appc ImageManifest as an OCI image: config, annotations, names.

Pure functions, used by acigen when it generates the build (to fail early
on what cannot be converted, and to say what is lost) and by the OCI
helper when it writes the image.

Mapping (appc -> OCI image config, image-spec config.md):
- labels os/arch -> os/architecture(/variant), in Go's names (amd64,
  aarch64 -> arm64, armv7l -> arm v7, i386 -> 386, ...);
- app.exec -> Entrypoint, Cmd left out: `docker run IMAGE ARGS` and
  `acigen run IMAGE -- ARGS` both append ARGS to exec;
- app.user/group -> User "user:group" (names stay names: runtimes resolve
  them in the image's /etc/passwd and /etc/group, as an appc executor does;
  a "/path" owner is resolved at build time by the helper);
- app.environment -> Env, with a default PATH first when the app sets none
  (the appc executor provides one; an OCI runtime does not);
- workingDirectory -> WorkingDir; ports -> ExposedPorts ("80/tcp", one per
  port of a range); mountPoints -> Volumes;
- labels (but os/arch) and app.userLabels -> config Labels;
- annotations and app.userAnnotations -> manifest annotations, with the
  known appc ones also under their org.opencontainers.image.* names, and
  the version label as org.opencontainers.image.version;
- created: SOURCE_DATE_EPOCH, never the clock (reproducible digests).
Not representable in an OCI image config (reported by `unmapped`):
supplementaryGIDs, isolators, eventHandlers, socket activation, port
protocols other than tcp/udp/sctp.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any

from acigen.errors import AcigenError
from acigen.specs import DEFAULT_PATH

# (appc os, appc arch) -> (OCI os, OCI architecture, variant)
PLATFORMS: dict[tuple[str, str], tuple[str, str, str | None]] = {
    ("linux", "amd64"): ("linux", "amd64", None),
    ("linux", "i386"): ("linux", "386", None),
    ("linux", "aarch64"): ("linux", "arm64", None),
    ("linux", "aarch64_be"): ("linux", "arm64be", None),
    ("linux", "armv6l"): ("linux", "arm", "v6"),
    ("linux", "armv7l"): ("linux", "arm", "v7"),
    ("linux", "armv7b"): ("linux", "armbe", "v7"),
    ("linux", "ppc64"): ("linux", "ppc64", None),
    ("linux", "ppc64le"): ("linux", "ppc64le", None),
    ("linux", "s390x"): ("linux", "s390x", None),
    ("freebsd", "amd64"): ("freebsd", "amd64", None),
    ("freebsd", "i386"): ("freebsd", "386", None),
    ("freebsd", "arm"): ("freebsd", "arm", None),
    ("darwin", "x86_64"): ("darwin", "amd64", None),
    ("darwin", "i386"): ("darwin", "386", None),
}

# appc's well-known annotations -> the OCI pre-defined annotation keys
KNOWN_ANNOTATIONS = {
    "created": "org.opencontainers.image.created",
    "authors": "org.opencontainers.image.authors",
    "homepage": "org.opencontainers.image.url",
    "documentation": "org.opencontainers.image.documentation",
}
PORT_PROTOCOLS = ("tcp", "udp", "sctp")
TAG_CHARS = re.compile(r"[^A-Za-z0-9_.-]")


class OciConfigError(AcigenError):
    """The manifest cannot become an OCI image."""


def labels_of(manifest: dict[str, Any]) -> dict[str, str]:
    return {label["name"]: label["value"] for label in manifest.get("labels", [])}


def platform(manifest: dict[str, Any]) -> tuple[str, str, str | None]:
    """(os, architecture, variant) in OCI's names."""
    labels = labels_of(manifest)
    if "os" not in labels or "arch" not in labels:
        raise OciConfigError("an OCI image needs an os and an arch, and the manifest's "
                             "labels lack " + ("os" if "os" not in labels else "arch"),
                             'add e.g. {"name": "arch", "value": "amd64"} to labels')
    key = (labels["os"], labels["arch"])
    if key not in PLATFORMS:
        raise OciConfigError(f"os {key[0]!r} with arch {key[1]!r} has no OCI equivalent")
    return PLATFORMS[key]


def rfc3339(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


OwnerOf = Callable[[str], tuple[int, int]]  # path in the image -> (uid, gid)


def oci_user(app: dict[str, Any], owner_of: OwnerOf | None = None) -> str:
    """appc user and group as OCI's "user:group"; a "/path" value (appc:
    the owner of that file in the image) needs OWNER_OF."""
    def one(value: str, index: int) -> str:
        if not value.startswith("/"):
            return value
        if owner_of is None:
            raise OciConfigError(f"user/group {value!r} (owner of a file) needs the image's "
                                 "root filesystem to resolve")
        return str(owner_of(value)[index])
    return f"{one(app['user'], 0)}:{one(app['group'], 1)}"


def environment(app: dict[str, Any]) -> list[str]:
    given = [f"{item['name']}={item['value']}" for item in app.get("environment", [])]
    if not any(item["name"] == "PATH" for item in app.get("environment", [])):
        given.insert(0, f"PATH={DEFAULT_PATH}")
    return given


def exposed_ports(app: dict[str, Any]) -> dict[str, dict[str, Any]]:
    ports: dict[str, dict[str, Any]] = {}
    for port in app.get("ports", []):
        protocol = port["protocol"].lower()
        if protocol not in PORT_PROTOCOLS:
            continue
        for number in range(port["port"], port["port"] + port.get("count", 1)):
            ports[f"{number}/{protocol}"] = {}
    return dict(sorted(ports.items()))


def config_labels(manifest: dict[str, Any]) -> dict[str, str]:
    labels = {k: v for k, v in labels_of(manifest).items() if k not in ("os", "arch")}
    labels.update(manifest.get("app", {}).get("userLabels", {}))
    return dict(sorted(labels.items()))


def run_config(app: dict[str, Any], owner_of: OwnerOf | None = None) -> dict[str, Any]:
    """The image config's `config` object: how to run the app."""
    config: dict[str, Any] = {"User": oci_user(app, owner_of), "Env": environment(app)}
    if app.get("exec"):
        config["Entrypoint"] = list(app["exec"])
    if app.get("workingDirectory"):
        config["WorkingDir"] = app["workingDirectory"]
    if exposed_ports(app):
        config["ExposedPorts"] = exposed_ports(app)
    if app.get("mountPoints"):
        config["Volumes"] = {mp["path"]: {} for mp in sorted(app["mountPoints"],
                                                              key=lambda m: m["path"])}
    return config


def image_config(manifest: dict[str, Any], epoch: int, diff_ids: Iterable[str] = (),
                 history: Iterable[str] = (), owner_of: OwnerOf | None = None
                 ) -> dict[str, Any]:
    """The OCI image config (application/vnd.oci.image.config.v1+json).

    DIFF_IDS: "sha256:..." of each uncompressed layer, base first; HISTORY:
    what made each layer, base first."""
    os_name, arch, variant = platform(manifest)
    created = rfc3339(epoch)
    config: dict[str, Any] = {"created": created, "architecture": arch, "os": os_name}
    if variant:
        config["variant"] = variant
    run = run_config(manifest["app"], owner_of) if "app" in manifest else {}
    labels = config_labels(manifest)
    if labels:
        run["Labels"] = labels
    config["config"] = run
    config["rootfs"] = {"type": "layers", "diff_ids": list(diff_ids)}
    config["history"] = [{"created": created, "created_by": what} for what in history]
    return config


def annotations(manifest: dict[str, Any], epoch: int) -> dict[str, str]:
    """The OCI image manifest's annotations."""
    out: dict[str, str] = {}
    for item in manifest.get("annotations", []):
        out[item["name"]] = item["value"]
        if item["name"] in KNOWN_ANNOTATIONS:
            out[KNOWN_ANNOTATIONS[item["name"]]] = item["value"]
    out.update(manifest.get("app", {}).get("userAnnotations", {}))
    out.setdefault("org.opencontainers.image.created", rfc3339(epoch))
    out["org.opencontainers.image.title"] = manifest["name"]
    version = labels_of(manifest).get("version")
    if version:
        out["org.opencontainers.image.version"] = version
    return dict(sorted(out.items()))


def tag(manifest: dict[str, Any]) -> str:
    """The tag the image is stored under: its version label, or latest."""
    version = labels_of(manifest).get("version", "")
    cleaned = TAG_CHARS.sub("-", version).lstrip(".-")[:128]
    return cleaned or "latest"


def repository(manifest: dict[str, Any]) -> str:
    """The image name as a docker repository (appc allows `~`; docker not)."""
    parts = [re.sub(r"[^a-z0-9._-]+", "-", part).strip("._-") or "x"
             for part in manifest["name"].split("/")]
    return "/".join(parts)


def unmapped(manifest: dict[str, Any]) -> list[str]:
    """What of the app section an OCI image config cannot carry."""
    app = manifest.get("app", {})
    lost = []
    if app.get("supplementaryGIDs") or app.get("supplementaryGids"):
        lost.append("supplementaryGIDs")
    lost += [f"isolator {item['name']}" for item in app.get("isolators", [])]
    lost += [f"event handler {item['name']}" for item in app.get("eventHandlers", [])]
    for port in app.get("ports", []):
        if port.get("socketActivated"):
            lost.append(f"socket activation of port {port['name']}")
        if port["protocol"].lower() not in PORT_PROTOCOLS:
            lost.append(f"port {port['name']} ({port['protocol']})")
    return lost


def check_oci(manifest: dict[str, Any]) -> list[str]:
    """At generation time: fail if the image cannot be an OCI image; return
    warnings for what the OCI config will lose."""
    platform(manifest)
    return [f"the OCI image config has no place for {what}" for what in unmapped(manifest)]
