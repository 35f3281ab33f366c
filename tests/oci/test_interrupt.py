"""An interrupted OCI helper leaves no archive, no temporary file, no mount."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.oci.conftest import HELLO
from tests.oci.imaging import image_file, make_layer
from tests.support.rootfs import debian_minbase_tarball


def test_sigterm_mid_write_leaves_nothing(tmp_path: Path, no_mount_leaks) -> None:
    base = make_layer(tmp_path / "01-base", [], "overlay",
                      f"tar --numeric-owner -xpf {debian_minbase_tarball()}")
    top = make_layer(tmp_path / "02-top", [base], "overlay", "rm -rf usr/share/doc")
    image = image_file(tmp_path / "big.json", HELLO, [top, base], "overlay")
    out = tmp_path / "out" / "big.oci.tar"
    proc = subprocess.Popen([sys.executable, "-m", "acigen.helpers.oci", "--image", str(image),
                             "--out", str(out), "--squash", "--docker-archive",
                             str(out.with_suffix(".docker"))],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not list(out.parent.glob(".big.oci.tar.tmp-*")) and proc.poll() is None:
        assert time.monotonic() < deadline, "the helper never started writing"
        time.sleep(0.05)
    time.sleep(0.5)  # well inside the layer
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip() == "acigen-oci: interrupted"
    assert sorted(p.name for p in out.parent.iterdir()) == []
