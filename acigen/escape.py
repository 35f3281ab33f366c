"""Escaping for the generated files; pure functions, one per context."""

from __future__ import annotations

import shlex

from acigen.errors import AcigenError


def _no_newline(text: str) -> str:
    if "\n" in text or "\r" in text:
        raise AcigenError(f"{text!r}: a newline cannot be written into a build file")
    return text


def ninja_path(path: str) -> str:
    """A path on a ninja `build` line: `$` first, then space and colon."""
    return _no_newline(path).replace("$", "$$").replace(" ", "$ ").replace(":", "$:")


def ninja_value(text: str) -> str:
    """A variable value: only `$` is special."""
    return _no_newline(text).replace("$", "$$")


def one_line(text: str) -> str:
    """Human text (a description) made safe for one line."""
    return " ".join(text.split())


def shell_words(words: list[str]) -> str:
    """Arguments for a ninja command: shell-quoted, then ninja-escaped."""
    return ninja_value(" ".join(shlex.quote(w) for w in words))


def make_path(path: str) -> str:
    """A path in a Makefile rule; make cannot express spaces or colons."""
    if any(c in path for c in " :#\t\n"):
        raise AcigenError(f"{path!r}: make cannot handle this path (space, ':' or '#')",
                          "use the ninja output, or rename the file")
    return path.replace("$", "$$")


def wrap(first: str, tokens: list[str], width: int = 78, indent: str = "    ") -> str:
    """Join FIRST and TOKENS with spaces, continuing long lines with `$`."""
    lines = [first]
    for token in tokens:
        if len(lines[-1]) + 1 + len(token) + 2 > width and lines[-1].strip():
            lines[-1] += " $"
            lines.append(indent + token)
        else:
            lines[-1] += " " + token
    return "\n".join(lines)
