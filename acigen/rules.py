"""How each kind of edge runs its helper: one table for ninja and make alike."""

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


HELPER_RULES = {rule.name: rule for rule in (
    HelperRule("acigen_fetch", "fetch", "--spec", "--ref", fetch=True),
    HelperRule("acigen_unpack", "unpack", "--step", "--stamp"),
    HelperRule("acigen_copy", "copy_host", "--step", "--stamp", depfile=True),
    HelperRule("acigen_chroot", "chroot_run", "--step", "--stamp"),
    HelperRule("acigen_extract", "extract", "--step", "--stamp"),
    HelperRule("acigen_python_env", "python_env", "--step", "--stamp", depfile=True),
    HelperRule("acigen_pack", "pack", "--image", "--out"),
    HelperRule("acigen_oci", "oci", "--image", "--out"),
    HelperRule("acigen_sign", "sign", "--spec", "--out", console=True),
    HelperRule("acigen_push", "registry.push", "--spec", "--out"),
)}
