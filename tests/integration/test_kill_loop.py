"""The seeded kill-and-corrupt loop: no wrong image, ever (issue 15).

Each trial makes the next build do some work (touches an input, or cleans),
then either kills a running ninja at a random moment with a random signal,
or damages what a build keeps (a cached chunk, a file in a layer, a layer's
stamp); then builds until done.  A build that exits 0 must have made the
reference image (same ID, valid for actool); a failing one must say why in
one line, never "internal error".  No mount may be left under the build.

    ACIGEN_KILL_SEED=7 ACIGEN_KILL_TRIALS=40 pytest -m slow tests/integration/test_kill_loop.py -s

prints: kill-and-corrupt (seed S): N trials, W wrong images, I internal errors
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.build import acigen, run_ninja
from tests.support.busybox import busybox_tar, shell, write_manifest
from tests.support.leaks import mounts_under
from tests.support.tools import actool, ninja

SIGNALS = (signal.SIGKILL, signal.SIGINT, signal.SIGTERM)


@dataclass
class Tally:
    trials: int = 0
    wrong: int = 0
    internal: int = 0

    def line(self, seed: int) -> str:
        return (f"kill-and-corrupt (seed {seed}): {self.trials} trials, "
                f"{self.wrong} wrong images, {self.internal} internal errors")


def project(work: Path) -> None:
    work.mkdir()
    (work / "base.tar").write_bytes(busybox_tar())
    (work / "data.txt").write_text("data\n")
    (work / "noise.bin").write_bytes(random.Random(1).randbytes(3 << 20))
    write_manifest(work / "m.json", [
        {"type": "image", "path": "base.tar"},
        {"type": "copy_host_files", "files": [["data.txt", "/data.txt"],
                                              ["noise.bin", "/noise.bin"]]},
        shell("sleep 0.3; cp /noise.bin /noise2; echo two > /two"),
        shell("sleep 0.3; echo three > /three")])
    acigen(work, "--chunk-size", "1", "m.json")


def make_work(work: Path, rng: random.Random) -> None:
    """Give the next build something to do, without changing the image."""
    choice = rng.choice(["touch data", "touch manifest", "clean", "remove image"])
    if choice == "touch data":
        os.utime(work / "data.txt")
    elif choice == "touch manifest":
        os.utime(work / "m.json")
    elif choice == "clean":
        acigen(work, "clean", check=False)
    else:
        (work / "m.aci").unlink(missing_ok=True)


def kill_a_build(work: Path, rng: random.Random) -> None:
    proc = subprocess.Popen([ninja()], cwd=work, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    time.sleep(rng.uniform(0, 4))
    how = rng.choice(SIGNALS)
    if proc.poll() is None:
        if how == signal.SIGINT:
            os.killpg(proc.pid, how)  # Ctrl-C: the whole foreground group
        else:
            proc.send_signal(how)  # ninja alone: its jobs must notice
    proc.communicate(timeout=120)
    time.sleep(0.5)  # orphaned helpers stop within their watch interval


def damage(work: Path, rng: random.Random) -> None:
    state = work / ".acigen"
    chunks = [p for p in (state / "chunks").glob("*") if p.is_file() and p.name != "lock"]
    files = [p for p in (state / "layers").glob("*/tree/**/*")
             if p.is_file() and not p.is_symlink() and p.stat().st_size > 1]
    stamps = list((state / "layers").glob("*.stamp"))
    target = rng.choice([t for t in (chunks, files, stamps) if t] or [[]])
    if not target:
        return
    victim = rng.choice(target)
    if victim.suffix == ".stamp":
        victim.unlink()
    else:
        os.truncate(victim, victim.stat().st_size // 2)
        (work / "m.aci").unlink(missing_ok=True)  # pack again, from what is damaged


def finish(work: Path, tally: Tally, reference: str) -> None:
    """Build until done (a damaged layer costs one clear failure first)."""
    for _attempt in range(3):
        result = run_ninja(work, check=False)
        output = result.stdout + result.stderr
        if "internal error" in output or "Traceback" in output:
            tally.internal += 1
        if result.returncode == 0:
            image_id = (work / "m.aci.id").read_text().strip()
            valid = subprocess.run([actool(), "validate", str(work / "m.aci")],
                                   capture_output=True).returncode == 0
            if image_id != reference or not valid:
                tally.wrong += 1
            return
    tally.wrong += 1  # never finished: as bad as a wrong image for the loop


@pytest.mark.slow
def test_kill_and_corrupt_loop(tmp_path: Path) -> None:
    seed = int(os.environ.get("ACIGEN_KILL_SEED", "15"))
    trials = int(os.environ.get("ACIGEN_KILL_TRIALS", "12"))
    rng = random.Random(seed)
    work = tmp_path / "work"
    project(work)
    run_ninja(work)
    reference = (work / "m.aci.id").read_text().strip()
    tally = Tally()
    for _ in range(trials):
        make_work(work, rng)
        if rng.random() < 0.6:
            kill_a_build(work, rng)
        else:
            run_ninja(work, check=False)
            damage(work, rng)
        finish(work, tally, reference)
        tally.trials += 1
        assert mounts_under([work]) == set()
    print(tally.line(seed))
    assert (tally.wrong, tally.internal) == (0, 0), tally.line(seed)
