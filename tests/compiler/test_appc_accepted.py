"""Manifests appc accepts that acigen once refused, shown without Go.

The differential test (test_appc_differential.py) shows these too, but only
where go and appc's sources are installed; these run everywhere."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from acigen import cli, manifest
from acigen.errors import AcigenError
from tests.compiler.appc_probes import SPEC_EXAMPLE

STEPS = [{"type": "copy_host_files", "binaries": ["/bin/sh"]}]
PLACEHOLDER = '"imageID": "sha512-..."'
LOWER = "sha512-" + "0123456789abcdef" * 8


def write(tmp_path: Path, document: dict) -> Path:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({**document, "-aci-packer-build-steps-": STEPS}, indent=1))
    return path


def spec_example(image_id: str) -> dict:
    """appc's examples/image.json, its placeholder imageID replaced."""
    assert SPEC_EXAMPLE.count(PLACEHOLDER) == 1
    return json.loads(SPEC_EXAMPLE.replace(PLACEHOLDER, f'"imageID": "{image_id}"'))


def test_the_spec_example_with_a_real_image_id_is_accepted(tmp_path: Path, monkeypatch,
                                                           capsys) -> None:
    path = write(tmp_path, spec_example(LOWER))
    image = manifest.load(str(path), str(tmp_path)).image
    # the fields acigen once refused reach the image as the example wrote them
    isolators = {i["name"]: i["value"] for i in image["app"]["isolators"]}
    assert isolators["os/linux/no-new-privileges"] is True
    assert image["dependencies"][0]["imageID"] == LOWER
    assert image["annotations"] == spec_example(LOWER)["annotations"]
    monkeypatch.chdir(tmp_path)  # and the command itself writes its build file
    assert cli.main(["manifest.json"]) == 0, capsys.readouterr().err
    assert (tmp_path / "build.ninja").exists()


def test_the_spec_examples_placeholder_is_refused(tmp_path: Path) -> None:
    """`sha512-...` is no image ID: the one documented reason ("image-id")."""
    path = write(tmp_path, spec_example("sha512-..."))
    with pytest.raises(AcigenError, match=r"/dependencies/0/imageID: 'sha512-\.\.\.' is not "
                                          r"an image ID"):
        manifest.load(str(path), str(tmp_path))


@pytest.mark.parametrize("image_id", [LOWER.upper().replace("SHA512", "sha512"),
                                      "sha512-" + "0123456789ABCDEF" * 4 + "0123456789abcdef" * 4,
                                      "sha512-ABCDEF"])
def test_upper_case_hex_in_an_image_id_is_accepted(tmp_path: Path, image_id: str) -> None:
    document = spec_example(image_id)
    image = manifest.load(str(write(tmp_path, document)), str(tmp_path)).image
    assert image["dependencies"][0]["imageID"] == image_id  # kept as written
