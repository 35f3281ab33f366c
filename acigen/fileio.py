"""Files written whole or not at all, JSON as acigen writes it, depfiles.

The one I/O module of the compiler and the helpers alike: every generated or
recorded file goes through atomic_write (a temporary beside it, renamed into
place), so a reader, or a build interrupted half way, sees the old file or
the new one.  A full disk is one line naming the file, not a traceback.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Sequence

from acigen.errors import NO_SPACE, HelperError, space_error

TYPE_CHECKING = False  # typing costs every step ~2 ms to import (bench/chroot_run.py)
if TYPE_CHECKING:
    from typing import Any


@contextlib.contextmanager
def writing(path: str) -> Iterator[None]:
    """Name PATH in the one-line error when the disk fills while writing it."""
    try:
        yield
    except OSError as exc:
        if exc.errno in NO_SPACE:
            raise space_error(exc, path) from None
        raise


def atomic_write(path: str, data: bytes | Sequence[bytes], mode: int = 0o644) -> None:
    """Write PATH so that readers see the old file or the whole new one:
    the one temp-then-rename.  DATA: bytes, or pieces written in turn."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = _new_temp_file(directory)
    try:
        with writing(path), os.fdopen(fd, "wb") as out:
            for piece in [data] if isinstance(data, bytes) else data:
                out.write(piece)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise


def _new_temp_file(directory: str) -> tuple[int, str]:
    """A new empty file in DIRECTORY, as tempfile.mkstemp makes it (mode 0600,
    never an existing name or a symlink), without importing tempfile (and with it
    random and shutil) at every regeneration of a build file."""
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    while True:
        tmp = os.path.join(directory, ".tmp-" + os.urandom(6).hex())
        try:
            return os.open(tmp, flags, 0o600), tmp
        except FileExistsError:
            continue


def write_if_changed(path: str, data: bytes) -> bool:
    """Write PATH atomically, but only if its content changes: an unchanged
    file keeps its mtime (what ninja's restat and a no-op rebuild rely on)."""
    try:
        with open(path, "rb") as old:
            if old.read() == data:
                return False
    except FileNotFoundError:
        pass
    atomic_write(path, data)
    return True


def remove_file(path: str) -> None:
    _unlink_quietly(path)


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


# The JSON acigen writes, in three styles only; each is part of some file's
# format, so none may change (goldens, image IDs and chain keys depend on them).

def canonical_json(value: Any) -> bytes:
    """Sorted and compact, UTF-8: what is hashed (chain keys) and what OCI
    images hold (config, manifest, index)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode()


def pretty_json(value: Any) -> bytes:
    """The side files acigen generates (step, image, fetch and sign specs)
    and the records of what they refer to: sorted, indented, diffable."""
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def json_bytes(data: Any) -> bytes:
    """DATA as the small, diffable JSON files helpers keep (refs, locks,
    stamps, layer records, download metadata)."""
    return (json.dumps(data, indent=1, sort_keys=True) + "\n").encode()


def read_json(path: str) -> Any:
    """The JSON at PATH (a file acigen wrote); missing or broken, one line."""
    try:
        with open(path, encoding="utf-8") as src:
            return json.load(src)
    except FileNotFoundError:
        raise HelperError(f"{path}: no such file",
                          hint="regenerate the build files by running acigen again") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HelperError(f"{path}: not valid JSON: {exc}") from None


def _depfile_escape(name: str) -> str:
    """A path as make and ninja read it in a depfile: backslash, space and
    `#` escaped with a backslash (a bare `#` starts a comment for make and
    splits the name for ninja), `$` doubled."""
    return name.replace("\\", "\\\\").replace(" ", "\\ ").replace("#", "\\#") \
               .replace("$", "$$")


def depfile_text(target: str, inputs: Sequence[str], phony: bool = True) -> bytes:
    """A Makefile-syntax depfile, as ninja reads it (first target = TARGET).

    PHONY: each input also gets an empty rule of its own (gcc's -MP), so
    that make, which includes the file in a Makefile build, reruns the step
    rather than stopping when an input disappears; ninja ignores them.
    """
    lines = [f"{_depfile_escape(target)}: \\"]
    lines += [f"  {_depfile_escape(name)} \\" for name in inputs]
    rules = "".join(f"{_depfile_escape(name)}:\n\n" for name in inputs) if phony else ""
    return ("\n".join(lines) + "\n\n" + rules).encode()


def write_depfile(path: str, target: str, inputs: Sequence[str]) -> None:
    """TARGET's depfile at PATH: INPUTS, each once, sorted."""
    atomic_write(path, depfile_text(target, sorted(set(inputs))))
