"""The containers default seccomp profile, in the OCI runtime spec's terms.

Podman, buildah and CRI-O confine containers with one profile, which
Debian ships in golang-github-containers-common as
/usr/share/containers/seccomp.json (an administrator's copy in
/etc/containers/ wins, as it does for those tools).  That file is written
in the containers' (and Docker's) own format: rules that apply only on
some architectures, or only when the container holds (or lacks) some
capabilities.  A runtime takes the plain runtime-spec format, so we
resolve those conditions for the container at hand:

- `includes.arches`: the rule applies only on these (Go-named) machines;
  `excludes.arches`: never on these;
- `includes.caps`: only if the container holds every one of them;
  `excludes.caps`: never if it holds any of them;
- `includes.minKernel`: only on this kernel or newer;
- `archMap`: the native architecture and the ones it can also run
  (x86-64 runs i386 and x32 code), each filtered by the profile.

We keep the file's own data and never edit its list: it is maintained
by people who follow the kernel's new system calls.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Collection

from acigen.errors import HelperError

TYPE_CHECKING = False  # typing costs ~2 ms to import, at every regeneration
if TYPE_CHECKING:
    from typing import Any

PROFILE_PATHS = ("/etc/containers/seccomp.json", "/usr/share/containers/seccomp.json")
PACKAGE = "golang-github-containers-common"
# uname -m -> (Go's name, libseccomp's name), as the profile spells them
MACHINES = {
    "x86_64": ("amd64", "SCMP_ARCH_X86_64"),
    "aarch64": ("arm64", "SCMP_ARCH_AARCH64"),
    "i686": ("386", "SCMP_ARCH_X86"),
    "armv7l": ("arm", "SCMP_ARCH_ARM"),
    "ppc64le": ("ppc64le", "SCMP_ARCH_PPC64LE"),
    "s390x": ("s390x", "SCMP_ARCH_S390X"),
    "riscv64": ("riscv64", "SCMP_ARCH_RISCV64"),
}
RULE_KEYS = ("names", "action", "errnoRet", "args")


def profile_path() -> str:
    for path in PROFILE_PATHS:
        if os.path.isfile(path):
            return path
    raise HelperError(f"no seccomp profile for the containers (looked for "
                      f"{' and '.join(PROFILE_PATHS)})",
                      hint=f"install it: apt-get install {PACKAGE}")


@functools.lru_cache(maxsize=4)
def _load(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as src:
            data = json.load(src)
    except (OSError, ValueError) as exc:
        raise HelperError(f"cannot read the seccomp profile {path}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("syscalls"), list):
        raise HelperError(f"{path}: not a seccomp profile (no list of syscalls)")
    return data


def default_profile(capabilities: Collection[str], path: str | None = None,
                    machine: str | None = None,
                    kernel: tuple[int, int] | None = None) -> dict[str, Any]:
    """The profile for a container holding CAPABILITIES, on MACHINE."""
    source = _load(path or profile_path())
    machine = machine or os.uname().machine
    if machine not in MACHINES:
        raise HelperError(f"no seccomp architecture known for {machine}")
    goarch, scmp = MACHINES[machine]
    kernel = kernel or _kernel_version()
    held = set(capabilities)
    out: dict[str, Any] = {"defaultAction": source["defaultAction"],
                           "architectures": _architectures(source, scmp),
                           "syscalls": [_rule(r) for r in source["syscalls"]
                                        if _applies(r, goarch, held, kernel)]}
    if "defaultErrnoRet" in source:
        out["defaultErrnoRet"] = source["defaultErrnoRet"]
    return out


def _architectures(source: dict[str, Any], native: str) -> list[str]:
    for entry in source.get("archMap") or []:
        if entry.get("architecture") == native:
            return [native, *entry.get("subArchitectures", [])]
    return [native]


def _applies(rule: dict[str, Any], goarch: str, held: set[str],
             kernel: tuple[int, int]) -> bool:
    includes, excludes = rule.get("includes") or {}, rule.get("excludes") or {}
    if includes.get("arches") and goarch not in includes["arches"]:
        return False
    if goarch in (excludes.get("arches") or []):
        return False
    if not set(includes.get("caps") or []) <= held:
        return False
    if held & set(excludes.get("caps") or []):
        return False
    wanted = includes.get("minKernel")
    return not wanted or kernel >= _version(wanted)


def _rule(rule: dict[str, Any]) -> dict[str, Any]:
    out = {key: rule[key] for key in RULE_KEYS if rule.get(key) not in (None, [], "")}
    if "name" in rule and "names" not in out:  # the profile's older, one-name form
        out["names"] = [rule["name"]]
    return out


def _version(text: str) -> tuple[int, int]:
    parts = [*text.split("-", 1)[0].split("."), "0"][:2]
    return (int(parts[0]), int(parts[1])) if all(p.isdigit() for p in parts) else (0, 0)


def _kernel_version() -> tuple[int, int]:
    return _version(os.uname().release)


def allowed_names(profile: dict[str, Any]) -> set[str]:
    """The system calls PROFILE allows without conditions on their arguments."""
    return {name for rule in profile["syscalls"] if rule["action"] == "SCMP_ACT_ALLOW"
            and not rule.get("args") for name in rule["names"]}
