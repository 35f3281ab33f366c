"""Every test directory says whether its tests need root (tests/support/privilege.py):
one that does not, and is not listed as running as any user, fails here."""

from __future__ import annotations

from pathlib import Path

from tests.support.privilege import UNPRIVILEGED

TESTS = Path(__file__).resolve().parents[1]


def gates_on_root(directory: Path) -> bool:
    conftest = directory / "conftest.py"
    return conftest.is_file() and "skip_unless_root()" in conftest.read_text()


def test_every_test_directory_runs_unprivileged_or_gates_on_root() -> None:
    directories = {p.name for p in TESTS.iterdir() if any(p.glob("test_*.py"))}
    gated = {name for name in directories if gates_on_root(TESTS / name)}
    assert directories >= UNPRIVILEGED
    assert not gated & UNPRIVILEGED, "listed as unprivileged but gated on root"
    assert directories - gated - UNPRIVILEGED == set(), "neither gated on root nor listed"
