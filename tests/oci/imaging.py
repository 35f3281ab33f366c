"""Hand-made images for the OCI, run and sign tests: real layers (built by
layers.writable_view in a private mount namespace, as a step helper builds
them), image files as acigen writes them, and the real pack and OCI helpers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

MAKE_LAYER = """
import subprocess, sys
from acigen.helpers.layers import layers
layer, mode, script, *lower = sys.argv[1:]
layers.enter_private_mount_namespace()
with layers.writable_view(layer, lower, mode) as root:
    subprocess.run(["/bin/sh", "-ec", script], cwd=root, check=True)
"""


def make_layer(layer: Path, lower: list[Path], mode: str, script: str) -> Path:
    """Run SCRIPT (in the merged root, as cwd) as one step building LAYER
    over LOWER (nearest first), in MODE (overlay or copy)."""
    subprocess.run([sys.executable, "-c", MAKE_LAYER, str(layer), mode, script,
                    *map(str, lower)], check=True)
    return layer


def manifest(name: str = "example.com/hello", exec_: list[str] | None = None,
             **app: Any) -> dict[str, Any]:
    return {"acKind": "ImageManifest", "acVersion": "0.8.11", "name": name,
            "labels": [{"name": "version", "value": "1.0.0"},
                       {"name": "os", "value": "linux"}, {"name": "arch", "value": "amd64"}],
            "app": {"exec": exec_ or ["/bin/echo", "hello"], "user": "0", "group": "0",
                    **app}}


def image_file(path: Path, manifest_: dict[str, Any], layer_dirs: list[Path], mode: str,
               compression: str = "gzip", epoch: int = 1_600_000_000,
               **extra: Any) -> Path:
    """An image file like acigen's (layers nearest first)."""
    spec = {"acigen": "0.1.0", "manifest": manifest_,
            "layers": [str(d) for d in layer_dirs], "layer_mode": mode,
            "compression": compression, "source_date_epoch": epoch,
            "chunk_cache": str(path.parent / "chunks"), **extra}
    path.write_text(json.dumps(spec, indent=2))
    return path


def helper(name: str, *args: str, check: bool = True,
           cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run helper NAME; CWD is the ninja file's directory when ninja runs it."""
    result = subprocess.run([sys.executable, "-m", f"acigen.helpers.{name}", *args],
                            capture_output=True, text=True, cwd=cwd)
    if check:
        assert result.returncode == 0, f"{name} {args}:\n{result.stdout}{result.stderr}"
    return result


def build_oci(image: Path, out: Path, *extra: str, cwd: Path | None = None) -> str:
    """Write the OCI archive; returns the helper's summary line."""
    return helper("oci", "--image", str(image), "--out", str(out), *extra, cwd=cwd).stdout


def build_aci(image: Path, out: Path) -> str:
    return helper("pack", "--image", str(image), "--out", str(out)).stdout
