"""Search-path strings: splitting, dynamic string tokens, and CPU-variant subdirectories.

Directory strings are used as the loader uses them: `..` is never folded lexically (the
kernel resolves it physically when the file is opened), only `//` and `/./` are tidied.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass

from acigen.helpers.elf.facts import LoaderFacts
from acigen.helpers.rootfs.walk import DIR, Walker

# glibc's is_dst(): a bare token must not run on into an identifier character
_DST = re.compile(r"\$(?:\{(ORIGIN|LIB|PLATFORM)\}|(ORIGIN|LIB|PLATFORM)(?![A-Za-z0-9_]))")


@dataclass(frozen=True)
class Expanded:
    text: str
    variant: bool          # one of several $PLATFORM candidates: the CPU decides
    relative: bool = False  # was relative (or empty): taken from the working directory


def tidy(path: str) -> str:
    """Collapse `//` and `/./`, drop a trailing slash; keep `..` (it is physical)."""
    absolute = path.startswith("/")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    text = "/".join(parts)
    return "/" + text if absolute else text


def has_origin(text: str) -> bool:
    return any((m.group(1) or m.group(2)) == "ORIGIN" for m in _DST.finditer(text))


def expand_glibc(text: str, origin: str | None, facts: LoaderFacts,
                 platforms: Sequence[str] | None = None) -> list[Expanded]:
    """Every expansion of TEXT's tokens; [] when a recognised token has no value
    (glibc then drops the whole element).  Unknown `$NAME`s stay literal."""
    values = {"ORIGIN": [origin] if origin else [], "LIB": [facts.lib] if facts.lib else [],
              "PLATFORM": list(facts.arch.platforms if platforms is None else platforms)}
    results, pos, variant = [""], 0, False
    for match in _DST.finditer(text):
        token = match.group(1) or match.group(2)
        choices = values[token]
        if not choices:
            return []
        variant |= token == "PLATFORM" and len(choices) > 1
        results = [r + text[pos:match.start()] + c for r in results for c in choices]
        pos = match.end()
    return [Expanded(r + text[pos:], variant) for r in results]


def expand_musl(text: str, origin: str | None) -> str | None:
    """musl expands only $ORIGIN; any other `$` makes the string unusable (None)."""
    out, pos = [], 0
    for match in re.finditer(r"\$", text):
        rest = text[match.start():]
        size = 9 if rest.startswith("${ORIGIN}") else 7 if rest.startswith("$ORIGIN") else 0
        if not size or origin is None:
            return None
        out.append(text[pos:match.start()] + origin)
        pos = match.start() + size
    return "".join(out) + text[pos:]


def split_path(text: str, seps: str = ":") -> list[str]:
    """Elements of a search-path string, empty ones kept (they mean the CWD for glibc)."""
    return re.split("[" + re.escape(seps) + "]", text)


def anchor(element: str, workdir: str) -> tuple[str, bool]:
    """An absolute directory for ELEMENT: relative and empty ones are taken from the
    process's CWD, which a static tool only knows as the configured working directory."""
    if element.startswith("/"):
        return tidy(element), False
    return tidy(posixpath.join(workdir, element)), True


def trusted(path: str, facts: LoaderFacts) -> bool:
    """glibc's secure-mode test for an expanded $ORIGIN: inside a system directory."""
    normal = posixpath.normpath(path) + "/"
    return any(normal.startswith(d.rstrip("/") + "/") for d in facts.system_dirs)


def hwcaps_names(facts: LoaderFacts, cpu: str) -> tuple[str, ...]:
    """glibc-hwcaps subdirectories the loader may pick: all of them for cpu "any", else
    the named level and those below it (none for an unknown or baseline name)."""
    names = facts.glibc_hwcaps
    if cpu == "any" or not names:
        return names
    return names[names.index(cpu):] if cpu in names else ()


def legacy_subdirs(walker: Walker, directory: str, names: Sequence[str]) -> list[str]:
    """Existing legacy hwcap subdirectories of DIRECTORY (tls/, haswell/, x86_64/, ... and
    their nestings, up to tls/platform/hwcap), any of which some CPU could search."""
    found: list[str] = []
    level = [""]
    for depth in range(3):
        below = []
        for base in level:
            for name in (("tls",) if depth == 0 else ()) + tuple(names):
                sub = f"{base}/{name}" if base else name
                if sub not in found and walker.resolve(f"{directory}/{sub}").status == DIR:
                    found.append(sub)
                    below.append(sub)
        level = below
        if not level:
            break
    return found
