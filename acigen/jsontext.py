"""What Python's json module takes but acigen must refuse with a located
error rather than crash on: integer literals too long to convert, and
lone surrogate escapes ("\\ud800"), which no UTF-8 file can hold."""

from __future__ import annotations

from acigen.jsoncheck import escape_pointer

TYPE_CHECKING = False  # typing costs ~2 ms to import, at every regeneration
if TYPE_CHECKING:
    from typing import Any

MAX_DIGITS = 4300  # Python's int() refuses longer literals (CVE-2020-10735)


class LongNumber(ValueError):
    """An integer literal longer than MAX_DIGITS."""

    def __init__(self, literal: str) -> None:
        super().__init__(f"an integer of {len(literal.lstrip('-'))} digits is out of range")
        self.literal = literal


def parse_int(literal: str) -> int:
    """json.loads hook: int(), or LongNumber where int() would crash."""
    if len(literal.lstrip("-")) > MAX_DIGITS:
        raise LongNumber(literal)
    return int(literal)


def line_column(text: str, offset: int) -> str:
    line = text.count("\n", 0, offset) + 1
    return f"{line}:{offset - text.rfind(chr(10), 0, offset)}"


def _has_surrogate(text: str) -> bool:
    return any("\ud800" <= char <= "\udfff" for char in text)


def lone_surrogate(value: Any, pointer: str = "") -> str | None:
    """The JSON pointer of the first string (or key) in VALUE holding a lone
    surrogate, or None."""
    if isinstance(value, str):
        return pointer if _has_surrogate(value) else None
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, child in items:
        where = f"{pointer}/{escape_pointer(str(key))}"
        if isinstance(key, str) and _has_surrogate(key):
            return where
        found = lone_surrogate(child, where)
        if found is not None:
            return found
    return None
