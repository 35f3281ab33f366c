"""Small C programs for tests, compiled here (gcc, static: they run in any
root, with or without a C library)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def static_program(source: Path, dest: Path) -> Path:
    """Compile SOURCE into a static executable at DEST; returns DEST."""
    subprocess.run(["gcc", "-static", "-O1", "-Wall", "-Werror", "-o", str(dest), str(source)],
                   check=True)
    return dest
