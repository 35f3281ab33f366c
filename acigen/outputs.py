"""The only module that writes files: atomically, and only when changed.

Unchanged files keep their mtimes, so running acigen again when nothing
changed gives ninja nothing to do.
"""

from __future__ import annotations

import glob
import os
import tempfile


def write_if_changed(path: str, data: bytes) -> bool:
    try:
        with open(path, "rb") as old:
            if old.read() == data:
                return False
    except FileNotFoundError:
        pass
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return True


def own_sources() -> list[str]:
    """acigen's modules and templates: when they change, regenerate."""
    package = os.path.dirname(os.path.abspath(__file__))
    from acigen import templates
    template_dir = os.path.dirname(os.path.abspath(templates.__file__))
    return sorted(glob.glob(os.path.join(package, "*.py")) +
                  glob.glob(os.path.join(template_dir, "*.j2")))


def depfile_text(target: str, inputs: list[str]) -> bytes:
    def esc(name: str) -> str:
        return name.replace("\\", "\\\\").replace(" ", "\\ ").replace("$", "$$")
    body = " \\\n  ".join(esc(name) for name in [f"{target}:", *inputs])
    return (body + "\n").encode()


def write_all(ninja_dir: str, ninja_file: str, text: str, files: dict[str, bytes],
              stamp: str) -> None:
    """Side files first, the ninja file next, the regeneration stamp last."""
    for rel, data in sorted(files.items()):
        write_if_changed(os.path.join(ninja_dir, rel), data)
    write_if_changed(ninja_file, text.encode())
    stamp_path = os.path.join(ninja_dir, stamp)
    write_if_changed(stamp_path + ".d", depfile_text(stamp, own_sources()))
    os.makedirs(os.path.dirname(stamp_path), exist_ok=True)
    with open(stamp_path, "w"):
        pass
    os.utime(stamp_path)
