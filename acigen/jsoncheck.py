"""Type checks on parsed JSON, each failure pointing at the offending value.

`Node` pairs a JSON value with its location (file, JSON pointer), so every
check can say exactly where the problem is:
`manifest.json:/-aci-packer-build-steps-/3/path: expected a string, got a list`.
"""

from __future__ import annotations

from collections.abc import Iterator

from acigen.errors import ManifestError

TYPE_CHECKING = False  # typing costs ~2 ms to import, at every regeneration
if TYPE_CHECKING:
    from typing import Any


class DuplicateKeys(dict):  # type: ignore[type-arg]
    """A JSON object that had a key more than once (seen while parsing)."""

    duplicates: list[str]


def object_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json.load hook: keep the first value, remember duplicated keys."""
    result: dict[str, Any] = {}
    duplicates = []
    for key, value in pairs:
        if key in result:
            duplicates.append(key)
        else:
            result[key] = value
    if not duplicates:
        return result
    marked = DuplicateKeys(result)
    marked.duplicates = duplicates
    return marked


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def escape_pointer(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


class Node:
    """A JSON value and where it is."""

    __slots__ = ("file", "pointer", "value")

    def __init__(self, file: str, pointer: str, value: Any) -> None:
        self.file = file
        self.pointer = pointer
        self.value = value

    def error(self, message: str, hint: str | None = None) -> ManifestError:
        return ManifestError(self.file, self.pointer, message, hint)

    def child(self, key: str | int) -> Node:
        value = self.value[key]
        return Node(self.file, f"{self.pointer}/{escape_pointer(str(key))}", value)

    def _expect(self, ok: bool, what: str) -> None:
        if not ok:
            raise self.error(f"expected {what}, got {type_name(self.value)}")

    def string(self, non_empty: bool = False) -> str:
        self._expect(isinstance(self.value, str), "a string")
        if non_empty and not self.value:
            raise self.error("must not be empty")
        return str(self.value)

    def boolean(self) -> bool:
        self._expect(isinstance(self.value, bool), "a boolean")
        return bool(self.value)

    def integer(self, low: int | None = None, high: int | None = None) -> int:
        self._expect(isinstance(self.value, int) and not isinstance(self.value, bool),
                     "an integer")
        if low is not None and self.value < low:
            raise self.error(f"must be at least {low}, got {self.value}")
        if high is not None and self.value > high:
            raise self.error(f"must be at most {high}, got {self.value}")
        return int(self.value)

    def items(self) -> Iterator[Node]:
        self._expect(isinstance(self.value, list), "a list")
        for index in range(len(self.value)):
            yield self.child(index)

    def strings(self) -> list[str]:
        return [item.string() for item in self.items()]

    def obj(self, required: tuple[str, ...] = (),
            optional: tuple[str, ...] = ()) -> dict[str, Node]:
        """Check an object's keys: required ones present, no unknown ones."""
        self._expect(isinstance(self.value, dict), "an object")
        if isinstance(self.value, DuplicateKeys):
            key = self.value.duplicates[0]
            raise self.child(key).error(f"key {key!r} appears more than once")
        allowed = required + optional
        for key in self.value:
            if key not in allowed:
                import difflib  # only for an error: not at every start

                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"did you mean {close[0]!r}?" if close else \
                    "known keys: " + ", ".join(sorted(allowed))
                raise self.child(key).error(f"unknown key {key!r}", hint)
        for key in required:
            if key not in self.value:
                raise self.error(f"missing required key {key!r}")
        return {key: self.child(key) for key in self.value}

    def mapping(self) -> dict[str, str]:
        """An object whose values are all strings."""
        fields = self.obj(optional=tuple(self.value) if isinstance(self.value, dict) else ())
        return {key: node.string() for key, node in fields.items()}
