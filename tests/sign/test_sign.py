"""Signing with throwaway GnuPG keys: the appc detached, armoured signature."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from acigen.signing import SigningError, check_signing

NOBODY = 65534
KEY = "test@example.invalid"


def gen_key(home: Path, uid: int | None = None) -> None:
    cmd = ["gpg", "--batch", "--homedir", str(home), "--passphrase", "",
           "--quick-gen-key", f"acigen test <{KEY}>", "ed25519", "sign", "never"]
    if uid is not None:  # as that user, as they would make their own key
        cmd = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
               "env", f"HOME={home}", *cmd]
    subprocess.run(cmd, check=True, capture_output=True)


def keyring(owner: int | None) -> Iterator[Path]:
    home = Path(tempfile.mkdtemp(prefix="acigen-gpg-"))
    if owner is not None:
        os.chown(home, owner, owner)
    try:
        gen_key(home, owner)
        yield home
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"],
                       capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def root_keyring() -> Iterator[Path]:
    yield from keyring(None)


@pytest.fixture(scope="module")
def user_keyring() -> Iterator[Path]:
    """A keyring of another user, as after `acigen` by a user then `sudo ninja`."""
    yield from keyring(NOBODY)


def sign(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "acigen.helpers.sign", *args],
                          capture_output=True, text=True)


def gpg_verify(home: Path, signature: Path, data: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["gpg", "--batch", "--homedir", str(home), "--verify",
                           str(signature), str(data)], capture_output=True, text=True)


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "app.aci"
    path.write_bytes(os.urandom(200_000))
    return path


def test_signature_verifies_and_a_tampered_image_does_not(root_keyring: Path, image: Path,
                                                          tmp_path: Path) -> None:
    spec = check_signing(KEY, str(root_keyring))
    spec_file = tmp_path / "sign.json"
    spec_file.write_text(json.dumps(spec.to_json()))
    result = sign("--spec", str(spec_file), str(image), "--out", str(image) + ".asc")
    assert result.returncode == 0, result.stderr
    signature = Path(str(image) + ".asc")
    assert signature.read_text().startswith("-----BEGIN PGP SIGNATURE-----\n")
    assert gpg_verify(root_keyring, signature, image).returncode == 0
    with open(image, "r+b") as data:
        data.seek(1000)
        byte = data.read(1)
        data.seek(1000)
        data.write(bytes([byte[0] ^ 1]))
    verdict = gpg_verify(root_keyring, signature, image)
    assert verdict.returncode != 0
    assert "BAD signature" in verdict.stderr


def test_an_oci_archive_is_signed_the_same_way(root_keyring: Path, tmp_path: Path) -> None:
    from tests.oci.imaging import helper, manifest
    from tests.support.rootfs import busybox_tree

    (tmp_path / "m.json").write_text(json.dumps(manifest()))
    archive = tmp_path / "app.oci.tar"
    helper("oci", "--manifest", str(tmp_path / "m.json"), "--rootfs",
           str(busybox_tree(tmp_path / "tree")), "-o", str(archive))
    result = sign("--key", KEY, "--homedir", str(root_keyring), str(archive))
    assert result.returncode == 0, result.stderr
    assert gpg_verify(root_keyring, Path(str(archive) + ".asc"), archive).returncode == 0


def test_a_users_keyring_is_used_as_that_user(user_keyring: Path, image: Path) -> None:
    spec = check_signing(KEY, str(user_keyring))
    assert (spec.uid, spec.gnupghome) == (NOBODY, str(user_keyring))
    # no agent yet: the one signing starts must be the user's, not root's
    subprocess.run(["gpgconf", "--homedir", str(user_keyring), "--kill", "gpg-agent"],
                   check=True)
    result = sign("--key", KEY, "--homedir", str(user_keyring), str(image))
    assert result.returncode == 0, result.stderr
    assert gpg_verify(user_keyring, Path(str(image) + ".asc"), image).returncode == 0
    # root wrote nothing into the user's keyring (a root-owned file there
    # would break their gpg), and the agent is theirs (its socket is here)
    assert list(user_keyring.glob("S.gpg-agent"))
    assert {p.stat().st_uid for p in user_keyring.rglob("*")} == {NOBODY}


def test_missing_key_is_a_clear_error_and_leaves_no_signature(root_keyring: Path,
                                                              image: Path) -> None:
    with pytest.raises(SigningError, match=r"^no secret key 'nokey@example.invalid' in "):
        check_signing("nokey@example.invalid", str(root_keyring))
    old = Path(str(image) + ".asc")
    old.write_text("an old signature of an old image")
    result = sign("--key", "nokey@example.invalid", "--homedir", str(root_keyring), str(image))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"acigen-sign: error: no secret key 'nokey@example.invalid' in {root_keyring}",
        "hint: list your keys with: gpg --list-secret-keys"]
    assert not old.exists()


def test_missing_gpg_or_keyring_is_a_clear_error(root_keyring: Path, tmp_path: Path) -> None:
    with pytest.raises(SigningError, match="not found: --sign needs GnuPG"):
        check_signing(KEY, str(root_keyring), gpg="/nonexistent/gpg")
    with pytest.raises(SigningError, match="no GnuPG keyring at"):
        check_signing(KEY, str(tmp_path / "nowhere"))
    with pytest.raises(SigningError, match="needs a key id"):
        check_signing("", str(root_keyring))
