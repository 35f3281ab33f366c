"""bench/run's results: rows, their table, and the notes a slow row or a missed target needs.

Every value is "lower is better" (seconds or bytes), so the ratio acigen / alternative
below 1.0 means acigen wins.  A row without numbers says why (a missing tool, a failed
build): no row is ever dropped silently.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

MIB = 2**20


@dataclass(frozen=True)
class Target:
    text: str  # as the issue states it, e.g. "< 50 ms"
    met: Callable[[float, float], bool]  # (ours, theirs) -> met?


def under(seconds: float, text: str) -> Target:
    return Target(text, lambda ours, _theirs: ours < seconds)


def ratio_at_most(limit: float, text: str) -> Target:
    return Target(text, lambda ours, theirs: ours <= limit * theirs)


@dataclass
class Row:
    number: int  # the numbering (1..8)
    what: str
    against: str  # the alternative, as shown
    unit: str = "s"  # "s" or "MiB"
    ours: float | None = None
    theirs: float | None = None
    target: Target | None = None
    detail: str = ""  # runs, CPU times, sizes: one line
    skipped: str = ""  # why there are no numbers
    note: str = ""  # why it is slower or misses its target, and the fix

    @property
    def measured(self) -> bool:
        return self.ours is not None and self.theirs is not None

    @property
    def ratio(self) -> float:
        assert self.ours is not None and self.theirs
        return self.ours / self.theirs

    @property
    def target_met(self) -> bool | None:
        if self.target is None or not self.measured:
            return None
        assert self.ours is not None and self.theirs is not None
        return self.target.met(self.ours, self.theirs)

    @property
    def needs_note(self) -> bool:
        return self.measured and (self.ratio > 1.0 or self.target_met is False)


def value(amount: float, unit: str) -> str:
    if unit == "MiB":
        return f"{amount / MIB:.2f} MiB"
    if amount < 1.0:
        return f"{amount * 1000:.1f} ms"
    return f"{amount:.2f} s"


def ratio_text(ratio: float) -> str:
    return f"1/{1 / ratio:.0f}" if ratio < 0.01 else f"{ratio:.2f}x"


def target_cell(row: Row) -> str:
    if row.target is None:
        return ""
    met = row.target_met
    return row.target.text + ("" if met is None else " (met)" if met else " (**missed**)")


def cell(text: str) -> str:
    """TEXT for a table cell: a bare | would end the cell, even inside `code`."""
    return text.replace("|", "\\|")


def table(rows: list[Row]) -> list[str]:
    lines = ["| # | measure | acigen | alternative | ratio | target |",
             "|---|---|---:|---|---:|---|"]
    for row in rows:
        row = dataclasses.replace(row, what=cell(row.what), against=cell(row.against))
        if not row.measured:
            lines.append(f"| {row.number} | {row.what} | - | {row.against} | - | "
                         f"skipped: {row.skipped} |")
            continue
        assert row.ours is not None and row.theirs is not None
        lines.append(f"| {row.number} | {row.what} | {value(row.ours, row.unit)} | "
                     f"{row.against}: {value(row.theirs, row.unit)} | {ratio_text(row.ratio)} | "
                     f"{target_cell(row)} |")
    return lines


def details(rows: list[Row]) -> list[str]:
    return [f"- {row.number}, {row.what}: {row.detail}" for row in rows if row.detail]


def notes(rows: list[Row]) -> list[str]:
    out = []
    for row in rows:
        if row.needs_note:
            out.append(f"- **{row.number}, {row.what}** ({ratio_text(row.ratio)}"
                       f"{'' if row.target_met is not False else ', target missed'}): "
                       f"{row.note or 'no explanation recorded for this row.'}")
    return out


@dataclass
class Report:
    facts: list[str] = field(default_factory=list)  # machine, date, revision, mode
    rows: list[Row] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [*self.facts, "", *table(self.rows)]
        skipped = [f"- {r.number}, {r.what}: {r.skipped}" for r in self.rows if not r.measured]
        for heading, body in (("Skipped", skipped), ("Notes", notes(self.rows)),
                              ("Details", details(self.rows))):
            if body:
                out += ["", f"### {heading}", "", *body]
        return out
