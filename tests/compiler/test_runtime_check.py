"""cmd and ansible steps need an OCI runtime: a missing one is an error when
acigen runs (one line naming the package), not in the middle of the build."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from acigen import cli


def write_manifest(tmp_path: Path, steps: list[dict[str, object]]) -> None:
    (tmp_path / "a.json").write_text(json.dumps({
        "name": "example.com/a", "-aci-packer-build-steps-": [
            {"type": "copy_host_files", "binaries": ["/bin/sh"]}, *steps]}))


@pytest.mark.parametrize(("runtime", "package"), [("crun", "crun"), ("runc", "runc"),
                                                  ("/opt/no/runtime", "runc (or crun)")])
def test_a_missing_runtime_is_a_generation_error(tmp_path: Path, monkeypatch, capsys,
                                                 runtime: str, package: str) -> None:
    write_manifest(tmp_path, [{"type": "cmd", "path": "/bin/true", "copy": False}])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))  # no runc or crun on it

    assert cli.main(["--runtime", runtime, "a.json"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"acigen: error: no OCI runtime found (looked for {runtime}); cmd and ansible steps "
        "run in its containers", f"hint: install one: apt-get install {package}"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_no_runtime_is_needed_without_chroot_steps(tmp_path: Path, monkeypatch) -> None:
    write_manifest(tmp_path, [])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert cli.main(["--runtime", "crun", "a.json"]) == 0


def test_the_chosen_runtime_and_network_reach_the_step_file(tmp_path: Path,
                                                            monkeypatch) -> None:
    write_manifest(tmp_path, [
        {"type": "cmd", "path": "/bin/true", "copy": False, "network": "none"},
        {"type": "cmd", "path": "/bin/true", "copy": False, "network": "host"}])
    monkeypatch.chdir(tmp_path)
    assert cli.main(["--runtime", "runc", "a.json"]) == 0
    specs = {p.name: json.loads(p.read_text())
             for p in (tmp_path / ".acigen" / "steps").glob("*cmd*.json")}
    # "host" is the default: left out, so steps that never say keep their layer keys
    networks = sorted(str(spec["step"].get("network", "(default)")) for spec in specs.values())
    assert networks == ["(default)", "none"]
    assert {spec["runtime"] for spec in specs.values()} == {"runc"}
    assert "--runtime runc" in (tmp_path / "build.ninja").read_text()


def test_a_missing_seccomp_profile_is_a_generation_error(tmp_path: Path, monkeypatch,
                                                        capsys) -> None:
    from acigen.helpers.chroot_run import seccomp
    write_manifest(tmp_path, [{"type": "cmd", "path": "/bin/true", "copy": False}])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(seccomp, "PROFILE_PATHS", (str(tmp_path / "seccomp.json"),))
    assert cli.main(["a.json"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"acigen: error: no seccomp profile for the containers (looked for "
        f"{tmp_path}/seccomp.json); cmd and ansible steps run in its containers",
        "hint: install it: apt-get install golang-github-containers-common"]


def test_the_runtime_search_finds_what_shutil_which_finds(tmp_path: Path, monkeypatch) -> None:
    """runtimes.which stands in for shutil.which (cheaper to import): the same
    answer for names on PATH, paths, directories, files that cannot run, an
    empty PATH entry (the working directory) and a PATH without the name."""
    import shutil

    from acigen.helpers.core.runtimes import which
    runnable, plain, folder = tmp_path / "runc", tmp_path / "crun", tmp_path / "dir"
    runnable.write_text("#!/bin/sh\n")
    runnable.chmod(0o755)
    plain.write_text("not executable\n")
    folder.mkdir()
    (folder / "runc").mkdir()  # a directory named like the runtime is no runtime
    monkeypatch.chdir(tmp_path)
    names = ["runc", "crun", "dir", str(runnable), str(plain), str(folder), "./runc", "sh"]
    for path in [f"{folder}:{tmp_path}", f"{tmp_path}:/bin", "", ":/bin", "/nonexistent"]:
        monkeypatch.setenv("PATH", path)
        for name in names:
            assert which(name) == shutil.which(name), (path, name)
    assert which("runc") is None  # PATH=/nonexistent
    monkeypatch.setenv("PATH", f"{folder}:{tmp_path}")
    assert which("runc") == str(runnable)
