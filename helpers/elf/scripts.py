"""`#!` lines as the kernel reads them, and `env PROGRAM` looked up through the target PATH.

Kernel (fs/binfmt_script.c): the first line, within the first 256 bytes; blanks (space, tab)
after `#!` skipped; the interpreter runs to the next blank; the rest of the line, trailing
blanks removed, is ONE optional argument.  A carriage return is not a blank: `#!/bin/sh\\r`
names the file `/bin/sh\\r`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from acigen.specs import DEFAULT_PATH

BUF_SIZE = 256       # BINPRM_BUF_SIZE since Linux 5.1
MAX_NESTING = 4      # interpreters that are scripts themselves
# what a container runtime sets when the image config has no PATH


@dataclass(frozen=True)
class Shebang:
    interpreter: str
    argument: str | None


class ShebangError(ValueError):
    pass


def parse(head: bytes) -> Shebang | None:
    """The `#!` line of a file starting with HEAD (None if it is not a script)."""
    if not head.startswith(b"#!"):
        return None
    buf = head[:BUF_SIZE]
    line, newline, _ = buf[2:].partition(b"\n")
    line = line.split(b"\0", 1)[0]
    stripped = line.lstrip(b" \t")
    end = len(stripped)
    for blank in (b" ", b"\t"):
        found = stripped.find(blank)
        if found >= 0:
            end = min(end, found)
    interpreter, rest = stripped[:end], stripped[end:].strip(b" \t")
    if not newline and len(buf) == BUF_SIZE and end == len(stripped):
        raise ShebangError("the #! line is longer than the kernel reads (256 bytes)")
    if not interpreter:
        raise ShebangError("the #! line names no interpreter")
    return Shebang(interpreter.decode("utf-8", "surrogateescape"),
                   rest.decode("utf-8", "surrogateescape") or None)


def env_program(argument: str | None) -> str | None:
    """The program `env ARGUMENT` runs: options and VAR=value words skipped; `-S` splits."""
    if not argument:
        return None
    words = [argument]
    if argument.startswith("-S"):
        words = argument[2:].split()
    for word in words:
        if word.startswith("-") or "=" in word:
            continue
        return word
    return None


def path_dirs(env: Mapping[str, str]) -> list[str]:
    """Directories of the target PATH (never the host's)."""
    return [d or "." for d in env.get("PATH", DEFAULT_PATH).split(":")]
