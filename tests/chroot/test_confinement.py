"""The seccomp profile as a runtime reads it: the containers default profile
(Debian's golang-github-containers-common) with its conditions resolved for
the container's capabilities and machine, then narrowed for build steps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from acigen.errors import HelperError
from acigen.helpers.chroot_run import confinement, seccomp

DEBIAN = "/usr/share/containers/seccomp.json"
DEFAULT = confinement.DEFAULT_CAPABILITIES


def allowed(caps: tuple[str, ...], machine: str = "x86_64") -> set[str]:
    return seccomp.allowed_names(seccomp.default_profile(caps, DEBIAN, machine, (6, 1)))


def test_capabilities_decide_which_calls_the_profile_allows() -> None:
    plain, admin = allowed(DEFAULT), allowed((*DEFAULT, "CAP_SYS_ADMIN"))
    assert {"bpf", "perf_event_open", "fanotify_init"} <= admin - plain
    assert "open_by_handle_at" not in plain
    assert "open_by_handle_at" in allowed((*DEFAULT, "CAP_DAC_READ_SEARCH"))
    assert "chroot" in plain  # CAP_SYS_CHROOT is in the default set
    assert {"init_module", "kexec_load", "iopl"}.isdisjoint(plain)


def test_the_machine_decides_which_calls_and_architectures() -> None:
    x86 = seccomp.default_profile(DEFAULT, DEBIAN, "x86_64", (6, 1))
    arm = seccomp.default_profile(DEFAULT, DEBIAN, "aarch64", (6, 1))
    assert x86["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    assert arm["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert "arch_prctl" in seccomp.allowed_names(x86)
    assert "arch_prctl" not in seccomp.allowed_names(arm)
    assert "cacheflush" in seccomp.allowed_names(arm)


def test_every_condition_of_the_format(tmp_path: Path) -> None:
    rules = [{"names": ["a"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "5.8"}},
             {"names": ["b"], "action": "SCMP_ACT_ALLOW", "excludes": {"arches": ["amd64"]}},
             {"names": ["c"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_KILL"]}},
             {"names": ["d"], "action": "SCMP_ACT_ALLOW",
              "includes": {"caps": ["CAP_KILL", "CAP_SYS_ADMIN"]}},
             {"name": "e", "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "args": []}]
    path = tmp_path / "profile.json"
    path.write_text(json.dumps({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": rules}))
    old = seccomp.default_profile(("CAP_KILL",), str(path), "x86_64", (5, 4))
    new = seccomp.default_profile(("CAP_SYS_ADMIN",), str(path), "aarch64", (6, 1))
    assert [r["names"] for r in old["syscalls"]] == [["e"]]
    assert [r["names"] for r in new["syscalls"]] == [["a"], ["b"], ["c"], ["e"]]
    assert new["syscalls"][-1] == {"names": ["e"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}


def test_build_steps_get_no_keyring_and_no_user_namespaces() -> None:
    profile = confinement.seccomp_profile(DEFAULT)
    names = seccomp.allowed_names(profile)
    assert {"keyctl", "add_key", "request_key", "unshare", "clone", "clone3"}.isdisjoint(names)
    by_name = {}
    for rule in profile["syscalls"]:
        for name in rule["names"]:
            by_name.setdefault(name, []).append(rule)
    assert [r["action"] for r in by_name["unshare"]] == ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO"]
    assert by_name["unshare"][1]["args"] == [{"index": 0, "value": confinement.CLONE_NEWUSER,
                                              "valueTwo": confinement.CLONE_NEWUSER,
                                              "op": "SCMP_CMP_MASKED_EQ"}]
    assert by_name["clone3"] == [{"names": ["clone3"], "action": "SCMP_ACT_ERRNO",
                                  "errnoRet": 38}]
    # with CAP_SYS_ADMIN (acigen run --cap-add) nesting is the container's business
    assert {"unshare", "clone"} <= seccomp.allowed_names(
        confinement.seccomp_profile((*DEFAULT, "CAP_SYS_ADMIN")))


def test_no_profile_is_one_line_naming_the_package(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    monkeypatch.setattr(seccomp, "PROFILE_PATHS", (str(tmp_path / "nowhere.json"),))
    with pytest.raises(HelperError) as caught:
        seccomp.default_profile(DEFAULT)
    assert caught.value.hint == "install it: apt-get install golang-github-containers-common"
