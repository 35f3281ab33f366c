"""--push: the --oci archive to a registry, as a ninja edge of its own."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.registry.conftest import Tiny, build, ok, write_manifest
from tests.support.build import run_ninja
from tests.support.registry import Registry

PLAIN = ("--tls-verify", "false")


def skopeo_inspect(ref: str, *flags: str) -> dict:
    done = subprocess.run(["skopeo", "inspect", *flags, ref], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_push_shows_the_archives_digests_and_a_second_push_uploads_nothing(
        registry: Registry, tiny: Tiny, tmp_path: Path) -> None:
    write_manifest(tmp_path, f"oci-archive:{tiny.archive}",
                   app={"exec": ["/bin/sh"], "user": "0", "group": "0"})
    target = registry.ref("pushed/t:1.0")
    out = ok(build(tmp_path, *PLAIN, "--oci", "t.oci.tar", "--push", target))
    assert f"t: push t.oci.tar to {target}" in out
    local = skopeo_inspect(f"oci-archive:{tmp_path / 't.oci.tar'}")
    remote = skopeo_inspect(target, "--tls-verify=false")
    assert remote["Digest"] == local["Digest"]
    assert remote["Layers"] == local["Layers"]
    pushed = (tmp_path / "t.oci.tar.pushed").read_text()
    assert pushed == local["Digest"] + "\n"
    assert f"pushed {local['Digest']}" in out
    assert "no work to do" in run_ninja(tmp_path, "-n").stdout

    uploads = registry.blob_uploads()
    (tmp_path / "t.oci.tar.pushed").unlink()
    again = run_ninja(tmp_path).stdout
    assert f"0 of {len(local['Layers']) + 1} blobs uploaded" in again, again
    assert registry.blob_uploads() == uploads
    assert (tmp_path / "t.oci.tar.pushed").read_text() == pushed


def test_push_with_several_manifests_fills_in_the_name(registry: Registry, tiny: Tiny,
                                                       tmp_path: Path) -> None:
    for name in ("one", "two"):
        write_manifest(tmp_path, f"oci-archive:{tiny.archive}", name=name,
                       app={"exec": ["/bin/sh"], "user": "0", "group": "0"})
    done = subprocess.run(
        [sys.executable, "-m", "acigen",
         *PLAIN, "--oci", "{name}.oci.tar", "--push", registry.ref("many/{name}:1"),
         "-b", "one.json", "two.json"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    for name in ("one", "two"):
        remote = skopeo_inspect(registry.ref(f"many/{name}:1"), "--tls-verify=false")
        assert (tmp_path / f"{name}.oci.tar.pushed").read_text() == remote["Digest"] + "\n"


def test_push_needs_oci(tmp_path: Path, tiny: Tiny) -> None:
    write_manifest(tmp_path, f"oci-archive:{tiny.archive}")
    done = build(tmp_path, "--push", "docker://127.0.0.1:1/x:1")
    assert done.returncode == 2  # a usage error
    assert "--push sends the OCI image: it needs --oci FILE" in done.stderr


def test_sign_and_push_together(registry: Registry, tiny: Tiny, tmp_path: Path) -> None:
    """--sign still signs the archive that --push sends."""
    from tests.sign.test_sign import KEY, gpg_verify, keyring
    home_gen = keyring(None)
    home = next(home_gen)
    try:
        write_manifest(tmp_path, f"oci-archive:{tiny.archive}",
                       app={"exec": ["/bin/sh"], "user": "0", "group": "0"})
        ok(build(tmp_path, *PLAIN, "--oci", "t.oci.tar", "--push", registry.ref("signed:1"),
                 "--sign", KEY, "--gnupg-home", str(home)))
        archive = tmp_path / "t.oci.tar"
        assert gpg_verify(home, Path(f"{archive}.asc"), archive).returncode == 0
        remote = skopeo_inspect(registry.ref("signed:1"), "--tls-verify=false")
        assert (tmp_path / "t.oci.tar.pushed").read_text() == remote["Digest"] + "\n"
    finally:
        home_gen.close()


@pytest.mark.parametrize(("args", "message"), [
    (("--oci", "t.oci.tar", "--push", "oci:somewhere"),
     "--push oci:somewhere: only docker:// references are pushed to"),
    (("--oci", "t.oci.tar", "--push", "docker://h.example/BAD:1"),
     "is not a repository name"),
    (("--cache-repo", "docker://h.example/layers:tag"),
     "--cache-repo docker://h.example/layers:tag: give a repository, docker://HOST/NAME"),
    (("--authfile", "/nonexistent/auth.json", "--oci", "t.oci.tar", "--push",
      "docker://h.example/x:1"), "--authfile /nonexistent/auth.json: no such file"),
])
def test_bad_registry_options_are_one_line(tmp_path: Path, tiny: Tiny, args: tuple,
                                           message: str) -> None:
    write_manifest(tmp_path, f"oci-archive:{tiny.archive}")
    done = build(tmp_path, *args)
    assert done.returncode == 2  # a usage error
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr
    assert not (tmp_path / "build.ninja").exists()
