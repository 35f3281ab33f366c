"""Registry failures are one line each and leave nothing in the cache; auth
and TLS as the containers tools do them."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.registry.conftest import Tiny, build, cached_blobs, error_lines, ok, push, write_manifest
from tests.registry.ocimake import Entry, archive, layer_tar, oci_layout
from tests.support.net import free_port
from tests.support.registry import PASSWORD, USER, Registry, blob_file

PLAIN = ("--tls-verify", "false")


def one_error(result: subprocess.CompletedProcess[str], text: str) -> str:
    lines = error_lines(result)
    assert len(lines) == 1 and text in lines[0], result.stdout + result.stderr
    return lines[0]


def auth_file(path: Path, host: str, password: str) -> Path:
    token = base64.b64encode(f"{USER}:{password}".encode()).decode()
    path.write_text(json.dumps({"auths": {host: {"auth": token}}}))
    return path


def test_unknown_tag(registry: Registry, tmp_path: Path) -> None:
    write_manifest(tmp_path, registry.ref("nosuch:1"))
    one_error(build(tmp_path, *PLAIN, cache=tmp_path / "cache"),
              f"{registry.ref('nosuch:1')}: no such image in {registry.host}")
    assert cached_blobs(tmp_path / "cache") == []


def test_unreachable_registry(tmp_path: Path) -> None:
    port = free_port()
    write_manifest(tmp_path, f"docker://127.0.0.1:{port}/x:1")
    one_error(build(tmp_path, cache=tmp_path / "cache"),
              f"cannot reach the registry 127.0.0.1:{port}: Connection refused")
    assert cached_blobs(tmp_path / "cache") == []


def test_digest_mismatch_keeps_nothing(registry: Registry, tmp_path: Path) -> None:
    """The registry's stored layer is damaged: the download does not match."""
    layer = layer_tar([Entry("data", os.urandom(4096))])
    oci_layout(tmp_path / "layout", [layer])
    push(registry, archive(tmp_path / "layout", tmp_path / "x.tar"), "damaged:1")
    manifest = json.loads(subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", registry.ref("damaged:1")],
        check=True, capture_output=True, text=True).stdout)
    digest = manifest["layers"][0]["digest"]
    stored = blob_file(registry, digest)
    data = bytearray(stored.read_bytes())
    data[-1] ^= 0xFF
    stored.write_bytes(bytes(data))
    write_manifest(tmp_path / "w", registry.ref("damaged:1"))
    one_error(build(tmp_path / "w", *PLAIN, cache=tmp_path / "cache"),
              f"digest mismatch: blob {digest} should be {digest}, the registry sent")
    assert digest.split(":")[1] not in cached_blobs(tmp_path / "cache")
    assert not list((tmp_path / "cache" / "fetch" / "partial").iterdir())


def test_pinned_digest_the_registry_lacks(registry: Registry, tmp_path: Path) -> None:
    ref = registry.ref("tiny@sha256:" + "0" * 64)
    write_manifest(tmp_path, ref)
    one_error(build(tmp_path, *PLAIN, cache=tmp_path / "cache"), "no such image")


def test_auth_over_tls_with_a_ca_bundle(secure_registry: Registry, tiny: Tiny,
                                        tmp_path: Path) -> None:
    reg = secure_registry
    assert reg.ca is not None and reg.auth_file is not None
    push(reg, tiny, "tiny:1")
    ca = str(reg.ca.ca_pem)
    # credentials from $REGISTRY_AUTH_FILE, the CA from --ca-bundle
    write_manifest(tmp_path / "ok", reg.ref("tiny:1"))
    env = dict(os.environ, REGISTRY_AUTH_FILE=str(reg.auth_file))
    done = subprocess.run([sys.executable, "-m", "acigen", "--cache-dir",
                           str(tmp_path / "cache"), "--ca-bundle", ca, "-b", "t.json"],
                          cwd=tmp_path / "ok", capture_output=True, text=True, env=env)
    ok(done)
    # no CA: the certificate is refused, unless --tls-verify=false is given
    write_manifest(tmp_path / "noca", reg.ref("tiny:1"))
    one_error(build(tmp_path / "noca", "--authfile", str(reg.auth_file),
                    cache=tmp_path / "c2"), "TLS failed: certificate verify failed")
    ok(build(tmp_path / "noca", "--authfile", str(reg.auth_file), *PLAIN,
             cache=tmp_path / "c2"))


def test_wrong_or_missing_credentials(secure_registry: Registry, tiny: Tiny,
                                      tmp_path: Path) -> None:
    reg = secure_registry
    assert reg.ca is not None
    push(reg, tiny, "tiny:1")
    wrong = auth_file(tmp_path / "wrong.json", reg.host, PASSWORD + "x")
    write_manifest(tmp_path / "w", reg.ref("tiny:1"))
    ca = ("--ca-bundle", str(reg.ca.ca_pem))
    one_error(build(tmp_path / "w", *ca, "--authfile", str(wrong), cache=tmp_path / "cache"),
              f"{reg.host}: the registry refused the credentials from {wrong}")
    env_home = tmp_path / "home"
    env_home.mkdir()
    done = subprocess.run([sys.executable, "-m", "acigen", "--cache-dir",
                           str(tmp_path / "cache"), *ca, "-b", "t.json"],
                          cwd=tmp_path / "w", capture_output=True, text=True,
                          env={**{k: v for k, v in os.environ.items()
                                  if k not in ("REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR")},
                               "HOME": str(env_home)})
    one_error(done, "the registry asks for credentials and no auth file names it")
    assert cached_blobs(tmp_path / "cache") == []


def test_push_with_docker_config_credentials(secure_registry: Registry, tiny: Tiny,
                                             tmp_path: Path) -> None:
    """~/.docker/config.json (of the user running the build) is read too."""
    reg = secure_registry
    assert reg.ca is not None
    home = tmp_path / "home"
    (home / ".docker").mkdir(parents=True)
    auth_file(home / ".docker" / "config.json", f"https://{reg.host}/v1/", PASSWORD)
    write_manifest(tmp_path / "w", f"oci-archive:{tiny.archive}",
                   app={"exec": ["/bin/sh"], "user": "0", "group": "0"})
    env = {**{k: v for k, v in os.environ.items()
              if k not in ("REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR")}, "HOME": str(home)}
    done = subprocess.run([sys.executable, "-m", "acigen", "--ca-bundle", str(reg.ca.ca_pem),
                           "--oci", "t.oci.tar", "--push", reg.ref("pushed:1"), "-b",
                           "t.json"], cwd=tmp_path / "w", capture_output=True, text=True,
                          env=env)
    out = ok(done)
    assert f"{reg.ref('pushed:1')}: pushed sha256:" in out


def test_bearer_tokens_pull_push_and_refusal(tiny: Tiny, tmp_path: Path) -> None:
    """A registry whose 401 names a token server (Bearer): the client asks it
    for a token with the credentials, scoped to the repository."""
    from tests.support.registry import running_registry
    with running_registry(tmp_path / "tok", token=True) as reg:
        assert reg.ca is not None and reg.auth_file is not None and reg.tokens is not None
        push(reg, tiny, "tiny:1")
        trust = ("--ca-bundle", str(reg.ca.ca_pem), "--authfile", str(reg.auth_file))
        write_manifest(tmp_path / "w", reg.ref("tiny:1"),
                       app={"exec": ["/bin/sh"], "user": "0", "group": "0"})
        asked = len(reg.tokens.requests)
        ok(build(tmp_path / "w", *trust, "--oci", "t.oci.tar", "--push",
                 reg.ref("copy:1"), cache=tmp_path / "cache"))
        scopes = reg.tokens.requests[asked:]
        assert "repository:tiny:pull" in scopes and "repository:copy:pull,push" in scopes
        wrong = auth_file(tmp_path / "wrong.json", reg.host, "nope")
        write_manifest(tmp_path / "x", reg.ref("tiny:1"))
        one_error(build(tmp_path / "x", "--ca-bundle", str(reg.ca.ca_pem), "--authfile",
                        str(wrong), cache=tmp_path / "c2"),
                  f"{reg.host}: the registry refused the credentials from {wrong}")
        assert cached_blobs(tmp_path / "c2") == []


def test_credentials_from_xdg_runtime_dir(secure_registry: Registry, tiny: Tiny,
                                          tmp_path: Path) -> None:
    """$XDG_RUNTIME_DIR/containers/auth.json, where `podman login` writes."""
    reg = secure_registry
    assert reg.ca is not None
    push(reg, tiny, "tiny:1")
    runtime = tmp_path / "run"
    (runtime / "containers").mkdir(parents=True)
    auth_file(runtime / "containers" / "auth.json", reg.host, PASSWORD)
    (tmp_path / "home").mkdir()
    write_manifest(tmp_path / "w", reg.ref("tiny:1"))
    env = {**{k: v for k, v in os.environ.items() if k != "REGISTRY_AUTH_FILE"},
           "XDG_RUNTIME_DIR": str(runtime), "HOME": str(tmp_path / "home")}
    ok(subprocess.run([sys.executable, "-m", "acigen", "--cache-dir", str(tmp_path / "c"),
                       "--ca-bundle", str(reg.ca.ca_pem), "-b", "t.json"],
                      cwd=tmp_path / "w", capture_output=True, text=True, env=env))
