"""The only module that writes files: atomically, and only when changed.

Unchanged files keep their mtimes, so running acigen again when nothing
changed gives ninja nothing to do.
"""

from __future__ import annotations

import glob
import os

from acigen.fileio import depfile_text, write_if_changed

__all__ = ["write_if_changed"]  # the compiler's writers use the shared one


def own_sources() -> list[str]:
    """acigen's modules and templates: when they change, regenerate."""
    package = os.path.dirname(os.path.abspath(__file__))
    from acigen import templates
    template_dir = os.path.dirname(os.path.abspath(templates.__file__))
    return sorted(glob.glob(os.path.join(package, "*.py")) +
                  glob.glob(os.path.join(template_dir, "*.j2")))


def write_side_files(base_dir: str, files: dict[str, bytes]) -> None:
    """FILES (relative to BASE_DIR), each rewritten only if it changed."""
    for rel, data in sorted(files.items()):
        write_if_changed(os.path.normpath(os.path.join(base_dir, rel)), data)


def write_build_file(path: str, text: str, touch: bool = False) -> None:
    """TOUCH: refresh its mtime even when unchanged.  Make needs that: it
    compares the Makefile's mtime with the manifests' on every run."""
    if not write_if_changed(path, text.encode()) and touch:
        os.utime(path)


def write_regen_stamp(path: str, target: str) -> None:
    """Ninja's regeneration stamp, last, after its depfile (acigen's own
    sources; TARGET: the stamp as the build file spells it)."""
    write_if_changed(path + ".d", depfile_text(target, own_sources(), phony=False))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w"):
        pass
    os.utime(path)


def write_make_deps(path: str, target: str) -> None:
    """Make's counterpart of the stamp's depfile: the Makefile depends on
    acigen's sources."""
    write_if_changed(path, depfile_text(target, own_sources()))
