"""End to end: an architecture-independent manifest, with isolator values of
every JSON kind appc allows, builds an image `actool validate` accepts."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.build import acigen, run_ninja
from tests.support.runc import image_manifest
from tests.support.tools import validate_aci

MANIFEST = {
    "name": "example.com/scripts",
    "labels": [{"name": "os", "value": "linux"}],  # no arch: any architecture
    "app": {
        "exec": [], "user": "0", "group": "0",
        "isolators": [
            {"name": "os/linux/no-new-privileges", "value": True},
            {"name": "os/linux/cpu-shares", "value": 512},
            {"name": "os/linux/oom-score-adj", "value": -100},
            {"name": "resource/memory", "value": {"limit": "128Mi"}},
        ],
    },
    "annotations": [{"name": "created", "value": "0000-01-01T00:00:00Z"},
                    {"name": "homepage", "value": "https://EXAMPLE.com/a%20b"}],
    "-aci-packer-build-steps-": [
        {"type": "copy_host_files", "files": [["hello.sh", "/hello.sh"]]},
    ],
}


def test_arch_independent_image_passes_actool(tmp_path: Path) -> None:
    (tmp_path / "hello.sh").write_text("echo hello\n")
    (tmp_path / "scripts.json").write_text(json.dumps(MANIFEST, indent=2))
    acigen(tmp_path, "scripts.json")
    run_ninja(tmp_path)
    image = tmp_path / "scripts.aci"
    validate_aci(image)
    written = image_manifest(image)
    assert written["labels"] == [{"name": "os", "value": "linux"}]
    assert written["app"]["isolators"] == MANIFEST["app"]["isolators"]
