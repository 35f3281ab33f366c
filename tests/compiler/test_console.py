"""The `acigen` command's start: a Ctrl-C anywhere is one line and exit 130."""

from __future__ import annotations

import subprocess
import sys

# acigen whose run drops an object whose finalizer is interrupted: Python
# cannot raise from there, so it would print "Exception ignored" and a
# traceback (as when Ctrl-C lands in importlib's module-lock cleanup)
LOST_INTERRUPT = """
import sys
import acigen.cli

class Dropped:
    def __del__(self):
        raise KeyboardInterrupt

def run(argv=None):
    Dropped()
    return 0

acigen.cli.main = run
from acigen import console
sys.exit(console.main())
"""


def test_a_ctrl_c_python_cannot_raise_is_still_an_interruption() -> None:
    done = subprocess.run([sys.executable, "-c", LOST_INTERRUPT], capture_output=True,
                          text=True, timeout=60)
    assert (done.returncode, done.stderr) == (130, "acigen: interrupted\n")


def test_other_unraisable_errors_are_still_shown() -> None:
    code = LOST_INTERRUPT.replace("raise KeyboardInterrupt", "raise ValueError('lost')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0
    assert "ValueError: lost" in done.stderr
