"""Escaping for the generated files; pure functions, one per context."""

from __future__ import annotations

import functools
import re
import shlex

from acigen.errors import AcigenError


# characters a make rule line takes literally (non-ASCII passes through):
# no space, ':', '#', '%' (pattern), '=' (assignment), '*?[' (globbing),
# '()' (archive members), '$', '\\' or quotes
# (compiled when first needed: the range up to U+10FFFF takes re ~2 ms, and
# only Makefiles need it, not the build.ninja of every regeneration)
@functools.cache
def _make_safe() -> re.Pattern[str]:
    return re.compile(r"^[A-Za-z0-9._+,@/~\x80-\U0010ffff-]+$")


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
    """A path on a Makefile rule line, where make has no quoting at all."""
    if not _make_safe().match(path) or path.startswith("~"):
        raise AcigenError(f"{path!r}: a Makefile cannot name this path (spaces and "
                          "':#%=*?[]()$\\' and quotes have meanings there)",
                          "use the ninja output, or rename the file")
    return path


def make_recipe(words: list[str]) -> str:
    """A command on a recipe line: shell-quoted, then `$` doubled for make."""
    return _no_newline(" ".join(shlex.quote(w) for w in words)).replace("$", "$$")


def dot_string(*lines: str) -> str:
    """A quoted Graphviz string; LINES become lines of a label."""
    def one(line: str) -> str:
        return one_line(line).replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "\\n".join(one(line) for line in lines) + '"'


def wrap(first: str, tokens: list[str], width: int = 78, indent: str = "    ",
         cont: str = " $") -> str:
    """Join FIRST and TOKENS with spaces, continuing long lines with CONT
    (ninja's `$`; make's backslash)."""
    lines = [first]
    for token in tokens:
        if len(lines[-1]) + 1 + len(token) + len(cont) > width and lines[-1].strip():
            lines[-1] += cont
            lines.append(indent + token)
        else:
            lines[-1] += " " + token
    return "\n".join(lines)
