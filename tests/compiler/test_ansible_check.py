"""A missing ansible-playbook is an error when acigen runs, not at build time."""

from __future__ import annotations

import json
from pathlib import Path

from acigen import cli


def test_missing_ansible_is_a_generation_error(tmp_path: Path, monkeypatch, capsys) -> None:
    (tmp_path / "site.yml").write_text("- hosts: all\n")
    (tmp_path / "a.json").write_text(json.dumps({
        "name": "example.com/a", "-aci-packer-build-steps-": [
            {"type": "copy_host_files", "binaries": ["/bin/sh"]},
            {"type": "ansible", "playbook": "site.yml"}]}))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ACIGEN_ANSIBLE_PLAYBOOK", str(tmp_path / "nowhere"))

    assert cli.main(["a.json"]) == 1
    first = capsys.readouterr().err.splitlines()[0]
    assert first == (f"acigen: error: a.json:/-aci-packer-build-steps-/1/type: "
                     f"ACIGEN_ANSIBLE_PLAYBOOK={tmp_path}/nowhere is not an executable "
                     "file; the ansible step needs it")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "site.yml"]
