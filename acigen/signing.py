"""Signing images with GnuPG: the checks acigen makes when it generates the
build, and the gpg invocation the sign helper runs at build time.

The appc spec asks for an ASCII-armoured detached signature beside the
image (`gpg --armor --detach-sign`, named IMAGE.aci.asc).

Which keyring?  A user runs `acigen --sign KEY m.json`, then `sudo ninja`.
At build time root has neither the user's keyring nor their gpg-agent (which
may hold the unlocked key).  So acigen records, when it generates the build,
the keyring directory (GNUPGHOME, else ~/.gnupg of the user running acigen;
under sudo, of SUDO_USER) and that user's uid and gid in the sign spec, and
the helper runs gpg *as that user*: their agent answers, their passphrase
cache works, and root never writes into their ~/.gnupg (a root-owned file
there breaks their gpg later).  The data to sign goes to gpg on stdin, so the
user needs no access to the build directory.
"""

from __future__ import annotations

import dataclasses
import os
import pwd
import shutil
import subprocess
from collections.abc import Sequence
from typing import Any

from acigen.errors import AcigenError

GPG_TIMEOUT = 600  # seconds; a hung pinentry must not hang the build forever


class SigningError(AcigenError):
    """gpg is missing, the key is unusable, or gpg failed."""


@dataclasses.dataclass(frozen=True)
class SignSpec:
    """What the sign helper needs: written by acigen into the build dir."""

    key: str
    gnupghome: str
    uid: int
    gid: int
    gpg: str = "gpg"

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SignSpec:
        try:
            return cls(key=str(data["key"]), gnupghome=str(data["gnupghome"]),
                       uid=int(data["uid"]), gid=int(data["gid"]),
                       gpg=str(data.get("gpg", "gpg")))
        except (KeyError, TypeError, ValueError) as exc:
            raise SigningError(f"bad sign spec: {exc}",
                               "regenerate the build files by running acigen again") from None


def invoking_user() -> pwd.struct_passwd:
    """The human behind this process: SUDO_USER's entry under sudo."""
    sudo_uid = os.environ.get("SUDO_UID")
    if os.geteuid() == 0 and sudo_uid and sudo_uid.isdigit():
        try:
            return pwd.getpwuid(int(sudo_uid))
        except KeyError:
            pass
    return pwd.getpwuid(os.getuid())


def default_gnupghome(user: pwd.struct_passwd) -> str:
    given = os.environ.get("GNUPGHOME")
    if given:
        return os.path.abspath(given)
    return os.path.join(user.pw_dir, ".gnupg")


def find_gpg(program: str | None = None) -> str:
    found = shutil.which(program or "gpg")
    if not found:
        raise SigningError(f"{program or 'gpg'} not found: --sign needs GnuPG",
                           "install it (Debian: apt-get install gnupg), or build without --sign")
    return found


def _env(spec: SignSpec) -> dict[str, str]:
    try:
        home = pwd.getpwuid(spec.uid).pw_dir
    except KeyError:
        home = spec.gnupghome
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home,
           "GNUPGHOME": spec.gnupghome, "LC_ALL": "C"}
    runtime = f"/run/user/{spec.uid}"
    if os.path.isdir(runtime):
        env["XDG_RUNTIME_DIR"] = runtime
    return env


def run_gpg(spec: SignSpec, args: Sequence[str], data: bytes | None = None,
            stdin: int | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run gpg on SPEC's keyring, as SPEC's user when we are root and they
    are not (see the module docstring).  DATA or the file STDIN is its input."""
    cmd = [spec.gpg, "--batch", "--no-tty", "--homedir", spec.gnupghome,
           "--no-auto-key-retrieve", *args]
    drop = os.geteuid() == 0 and spec.uid != 0
    try:
        return subprocess.run(
            cmd, input=data, stdin=stdin if data is None else None, capture_output=True,
            env=_env(spec), timeout=GPG_TIMEOUT,
            user=spec.uid if drop else None, group=spec.gid if drop else None,
            extra_groups=[] if drop else None)
    except FileNotFoundError:
        raise SigningError(f"{spec.gpg} not found: signing needs GnuPG",
                           "install it (Debian: apt-get install gnupg)") from None
    except subprocess.TimeoutExpired:
        raise SigningError(f"gpg did not finish within {GPG_TIMEOUT} s",
                           "is it waiting for a passphrase? unlock the key in your "
                           "gpg-agent first") from None


def last_line(stderr: bytes) -> str:
    lines = [line.strip() for line in stderr.decode(errors="replace").splitlines()
             if line.strip()]
    return lines[-1] if lines else "no message"


def signing_capable(colons: str) -> bool:
    """Whether `--with-colons --list-secret-keys` shows a key that can sign:
    a primary or subkey, neither revoked nor expired, with usage `s`."""
    for line in colons.splitlines():
        fields = line.split(":")
        if fields[0] in ("sec", "ssb") and len(fields) > 11:
            usable = fields[1] not in ("r", "e", "d", "i")
            if usable and "s" in fields[11]:
                return True
    return False


def check_signing(key: str, gnupghome: str | None = None,
                  gpg: str | None = None) -> SignSpec:
    """Fail now, not at the end of a long build, when signing cannot work.

    Returns the spec to record for the sign helper."""
    if not key or key.startswith("-"):
        raise SigningError(f"--sign needs a key id, got {key!r}")
    user = invoking_user()
    home = os.path.abspath(gnupghome) if gnupghome else default_gnupghome(user)
    if not os.path.isdir(home):
        raise SigningError(f"no GnuPG keyring at {home}",
                           "set GNUPGHOME, or create a key: gpg --quick-gen-key NAME")
    # gpg runs as the keyring's owner: theirs are the keys and the agent
    st = os.stat(home)
    group = pwd.getpwuid(st.st_uid).pw_gid if _known_uid(st.st_uid) else st.st_gid
    spec = SignSpec(key=key, gnupghome=home, uid=st.st_uid, gid=group, gpg=find_gpg(gpg))
    result = run_gpg(spec, ["--with-colons", "--list-secret-keys", "--", key])
    if result.returncode != 0 or not result.stdout.strip():
        raise SigningError(f"no secret key {key!r} in {home}",
                           "list your keys with: gpg --list-secret-keys")
    if not signing_capable(result.stdout.decode(errors="replace")):
        raise SigningError(f"key {key!r} in {home} cannot sign (revoked, expired or "
                           "without a signing subkey)")
    return spec


def _known_uid(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
    except KeyError:
        return False
    return True


def detach_sign(spec: SignSpec, path: str) -> bytes:
    """An ASCII-armoured detached signature of the file at PATH."""
    with open(path, "rb") as src:
        result = run_gpg(spec, ["--armor", "--detach-sign", "--local-user", spec.key,
                                "--output", "-"], stdin=src.fileno())
    if result.returncode != 0 or not result.stdout.startswith(b"-----BEGIN PGP SIGNATURE"):
        raise SigningError(f"gpg could not sign {path} with key {spec.key!r}: "
                           f"{last_line(result.stderr)}",
                           "a key with a passphrase must be unlocked in your gpg-agent")
    return result.stdout


def verify(spec: SignSpec, path: str, signature: str) -> None:
    """Fail unless SIGNATURE (a file) is a good signature of the file at PATH."""
    with open(path, "rb") as src:
        result = run_gpg(spec, ["--verify", signature, "-"], stdin=src.fileno())
    if result.returncode != 0:
        raise SigningError(f"{signature}: not a good signature of {path}: "
                           f"{last_line(result.stderr)}")
