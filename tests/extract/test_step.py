"""extract as ninja runs it: a step file, hand-made layers, a stamp.

In overlay mode what extract deletes becomes whiteouts in its own layer and the
layers below stay as they were; copy mode gives the same image."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.extract.support import run_step, small_image, snapshot

LAYERS = ".acigen/layers"
EXPECTED = {"/", "/bin", "/bin/busybox", "/dev", "/proc", "/run", "/sys", "/tmp", "/etc",
            "/etc/passwd", "/etc/app", "/etc/app/main.conf", "/etc/app/conf.d",
            "/etc/app/conf.d/a.conf", "/etc/app/conf.d/b.conf", "/etc/app/conf.d/.hidden.conf"}


@pytest.fixture
def build(tmp_path: Path) -> Path:
    """A build directory whose first layer is the small busybox image."""
    small_image(tmp_path / LAYERS / "01-image" / "tree")
    return tmp_path


def write_step(build: Path, step: dict, mode: str = "overlay", name: str = "02-extract",
               lower: tuple[str, ...] = ("01-image",)) -> Path:
    spec = {"acigen": "0.1.0", "label": "test: step 2 extract", "layer": f"{LAYERS}/{name}",
            "lower": [f"{LAYERS}/{p}" for p in lower], "layer_mode": mode,
            "log": f".acigen/logs/{name}.log", "step": {"type": "extract", **step}}
    path = build / f"{name}.step.json"
    path.write_text(json.dumps(spec))
    return path


def merged(build: Path, layers: list[str]) -> dict[str, tuple]:
    """A snapshot of the image LAYERS (top first) make, read through a real overlay
    mount in a throw-away mount namespace."""
    mnt = build / "view"
    mnt.mkdir(exist_ok=True)
    lower = ":".join(str(build / LAYERS / name / "tree") for name in layers)
    code = ("import json, sys; from tests.extract.support import snapshot; "
            "json.dump(snapshot(__import__('pathlib').Path(sys.argv[1])), sys.stdout)")
    script = (f'mount -t overlay overlay -o ro,lowerdir="{lower}" "{mnt}" && '
              f'exec "{sys.executable}" -c "{code}" "{mnt}"')
    out = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                         capture_output=True, text=True, check=True,
                         cwd=Path(__file__).parent.parent.parent)
    return {path: tuple(map(_tuple, entry)) for path, entry in json.loads(out.stdout).items()}


def _tuple(value: object) -> object:
    return tuple(map(_tuple, value)) if isinstance(value, list) else value


STEP = {"binaries": ["/bin/busybox"], "keeps": ["/etc/app", "/etc/passwd"]}


def test_overlay_step_whites_out_the_rest_and_leaves_lower_layers_alone(
        build: Path, no_mount_leaks) -> None:
    lower_before = snapshot(build / LAYERS / "01-image/tree")
    result = run_step(write_step(build, STEP), build / "02.stamp", build)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("02-extract: kept 15 entries")
    assert json.loads((build / "02.stamp").read_text())["mode"] == "overlay"
    assert snapshot(build / LAYERS / "01-image/tree") == lower_before
    upper = build / LAYERS / "02-extract/tree"
    for gone in ("srv", "usr", "root", "var", "data", "etc/group", "bin/sh"):
        st = os.lstat(upper / gone)
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0, gone  # an overlay whiteout
    view = merged(build, ["02-extract", "01-image"])
    assert set(view) == EXPECTED
    assert view == {path: lower_before[path] for path in view}  # times and modes too


def test_copy_mode_gives_the_same_image(build: Path, no_mount_leaks) -> None:
    result = run_step(write_step(build, STEP, mode="copy"), build / "02.stamp", build)
    assert result.returncode == 0, result.stderr
    copy = snapshot(build / LAYERS / "02-extract/tree")
    assert set(copy) == EXPECTED
    result = run_step(write_step(build, STEP, name="03-extract"), build / "03.stamp", build)
    assert result.returncode == 0, result.stderr
    assert merged(build, ["03-extract", "01-image"]) == copy


def test_a_failed_step_leaves_no_stamp_and_a_fixed_one_finishes(
        build: Path, no_mount_leaks) -> None:
    stamp = build / "02.stamp"
    stamp.write_text("old")  # from an earlier, different run: must not survive a failure
    bad = write_step(build, {"binaries": ["/bin/busybox"], "keeps": ["/etc/nope"]})
    result = run_step(bad, stamp, build)
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == ("acigen-extract: error: keeps not in the image: "
                                             "/etc/nope")
    assert not stamp.exists()
    result = run_step(write_step(build, STEP), stamp, build)
    assert result.returncode == 0, result.stderr
    assert stamp.exists()


def test_the_app_exec_is_the_default_binary_found_through_its_path(
        build: Path, no_mount_leaks) -> None:
    app = {"exec": ["busybox", "sh"], "user": "www-data", "group": "0",
           "environment": [{"name": "PATH", "value": "/usr/local/bin:/bin"}]}
    result = run_step(write_step(build, {"binaries": [], "keeps": [], "app": app}),
                      build / "02.stamp", build)
    assert result.returncode == 0, result.stderr
    # the warning reaches the user (ninja prints a job's output), then the summary
    warning, summary = result.stdout.splitlines()
    assert warning.startswith("extract: warning: app.user is 'www-data', a name, but "
                              "/etc/passwd is not kept")
    assert "set app.user to '33'" in warning
    assert "kept 7 entries" in summary and "for /bin/busybox;" in summary
    log = (build / ".acigen/logs/02-extract.log").read_text()
    assert "keep /bin/busybox" in log
