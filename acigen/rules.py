"""The registry of what acigen builds with: each helper program and the rule
that runs it (for ninja and make alike), and each step type with its layer
tag and helper.  steps, plan, render, explain and pyproject's console
scripts all read these tables."""

from __future__ import annotations

from dataclasses import dataclass

# `python -I -m`: the build runs from the ninja file's directory, and a plain
# `-m` would put that directory first on sys.path; in a checkout of acigen it
# holds the repository's acigen/ (without helpers/), which would shadow the
# installed package.  -I also keeps PYTHON* variables out of the build.
ISOLATED = ("-I", "-m")
# Before acigen itself runs again: Ctrl-C while Python starts up interrupts
# its import of `site`, a "Fatal Python error" with a traceback.  So the
# shell ignores SIGINT for the interpreter's start, and acigen's __main__
# takes it back (ACIGEN_SIGINT tells it to): an interrupted regeneration ends
# with "acigen: interrupted", never half a build file.
DEFER_SIGINT = "trap '' INT && ACIGEN_SIGINT=deferred"


@dataclass(frozen=True)
class HelperRule:
    name: str          # the ninja rule's name
    module: str        # in acigen.helpers
    in_flag: str       # names the edge's spec file
    out_flag: str      # names its output
    depfile: bool = False   # the helper lists the host files it read
    fetch: bool = False     # a download: in the fetch pool, output rewritten only on change
    console: bool = False   # may ask the user something (a gpg passphrase)

    def arguments(self, spec: str, out: str) -> list[str]:
        """The helper's arguments for one edge."""
        words = [*ISOLATED, f"acigen.helpers.{self.module}", self.in_flag, spec, self.out_flag,
                 out]
        return words + (["--depfile", out + ".d"] if self.depfile else [])


# The programs ninja runs, one rule each.
FETCH = HelperRule("acigen_fetch", "fetch", "--spec", "--ref", fetch=True)
UNPACK = HelperRule("acigen_unpack", "unpack", "--step", "--stamp")
COPY = HelperRule("acigen_copy", "copy_host", "--step", "--stamp", depfile=True)
CHROOT = HelperRule("acigen_chroot", "chroot_run", "--step", "--stamp")
EXTRACT = HelperRule("acigen_extract", "extract", "--step", "--stamp")
PYTHON_ENV = HelperRule("acigen_python_env", "python_env", "--step", "--stamp", depfile=True)
PACK = HelperRule("acigen_pack", "pack", "--image", "--out")
OCI = HelperRule("acigen_oci", "oci", "--image", "--out")
SIGN = HelperRule("acigen_sign", "sign", "--spec", "--out", console=True)
PUSH = HelperRule("acigen_push", "push", "--spec", "--out")

HELPER_RULES = {rule.name: rule for rule in (
    FETCH, UNPACK, COPY, CHROOT, EXTRACT, PYTHON_ENV, PACK, OCI, SIGN, PUSH)}


@dataclass(frozen=True)
class StepKind:
    type: str                 # the step's "type" in the manifest
    tag: str                  # in its layer's name: 02-TAG-KEY
    rule: HelperRule | None   # what runs it; None: no layer (setup_chroot)


# Every step type, in the order the README lists them.
STEP_KINDS = {kind.type: kind for kind in (
    StepKind("image", "image", UNPACK),
    StepKind("setup_chroot", "setup_chroot", None),
    StepKind("cmd", "cmd", CHROOT),
    StepKind("ansible", "ansible", CHROOT),
    StepKind("extract", "extract", EXTRACT),
    StepKind("create_python_env", "python", PYTHON_ENV),
    StepKind("copy_host_files", "copy", COPY),
)}

# Helpers a user runs by hand only (no ninja rule), also console scripts.
BY_HAND_ONLY = ("extract_deps",)


def console_scripts() -> dict[str, str]:
    """pyproject's [project.scripts], as they must read: acigen-NAME for every
    helper program (tests/compiler/test_registry.py compares the two)."""
    modules = [rule.module for rule in HELPER_RULES.values()] + list(BY_HAND_ONLY)
    scripts = {"acigen": "acigen.console:main"}
    scripts.update({f"acigen-{module.replace('_', '-')}": f"acigen.helpers.{module}.__main__:main"
                    for module in modules})
    return scripts
