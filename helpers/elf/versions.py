"""Symbol-version check: each DT_VERNEED entry against the provider's DT_VERDEF.

glibc checks these before running anything and aborts with "version `GLIBC_2.34' not found"
instead of looking for another copy, so a host program copied into an image whose libc is
older must be caught here.  A provider without any version definitions only earns a
warning ("no version information available"); weak references only warn too.
"""

from __future__ import annotations

import re

from acigen.helpers.elf.elffile import ElfInfo


def _key(version: str) -> tuple[str, tuple[int, ...]]:
    found = re.fullmatch(r"(.*?)([\d.]+)", version)
    if not found:
        return version, ()
    numbers = tuple(int(n) for n in found.group(2).split(".") if n)
    return found.group(1), numbers


def newest(defined: tuple[str, ...], like: str) -> str | None:
    """The newest version in DEFINED of the same family as LIKE (GLIBC_2.31 for GLIBC_*)."""
    family = _key(like)[0]
    same = [v for v in defined if _key(v)[0] == family and _key(v)[1]]
    return max(same, key=lambda v: _key(v)[1]) if same else None


def check(requester: str, info: ElfInfo, name: str, provider: str,
          provided: ElfInfo) -> tuple[list[str], list[str]]:
    """(problems, warnings) for REQUESTER's version needs on NAME, provided by PROVIDER."""
    problems: list[str] = []
    warnings: list[str] = []
    for file, versions in info.verneed:
        if file != name:
            continue
        if not provided.verdef:
            warnings.append(f"{provider} ({name}) has no version information, which "
                            f"{requester} expects (the loader only warns)")
            continue
        for version, weak in versions:
            if version in provided.verdef:
                continue
            top = newest(provided.verdef, version)
            text = (f"missing symbol version {version}: {requester} needs it from {name}, but "
                    f"{provider} does not define it" + (f" (newest there: {top})" if top else ""))
            (warnings if weak else problems).append(text + (" [weak]" if weak else ""))
    return problems, warnings
