"""acigen-sign: an ASCII-armoured detached GnuPG signature of a built image.

Ninja runs (SIGNSPEC written by acigen; see acigen/signing.py for why it
names a keyring and a user):

    python -m acigen.helpers.sign --spec SIGNSPEC IMAGE --out IMAGE.asc

By hand:

    acigen-sign --key KEYID [--homedir DIR] IMAGE [--out IMAGE.asc]

The signature is checked with `gpg --verify` before it is renamed into
place; a failed or interrupted run leaves no signature (an old one is
removed first: it belongs to the old image).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from collections.abc import Sequence

from acigen.errors import ExitCode, HelperError
from acigen.fileio import atomic_write, read_json, remove_file
from acigen.helpers.core.common import run_main
from acigen.signing import SignSpec, check_signing, detach_sign, verify

PROG = "acigen-sign"


def parse(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=PROG, description="Sign an image: IMAGE.asc, an "
                                "ASCII-armoured detached GnuPG signature.")
    p.add_argument("image", nargs="?", help="the file to sign (default: the spec's image)")
    p.add_argument("--out", "-o", help="default: IMAGE.asc")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--spec", help="the sign spec acigen wrote")
    who.add_argument("--key", help="the key to sign with (by hand)")
    p.add_argument("--homedir", help="the keyring (with --key; default: GNUPGHOME or "
                   "~/.gnupg)")
    return p.parse_args(argv)


def sign_file(spec: SignSpec, image: str, out: str) -> str:
    """Sign IMAGE into OUT; returns the signature's first line of armour."""
    if not os.path.isfile(image):
        raise HelperError(f"{image}: no such file")
    signature = detach_sign(spec, image)
    # gpg may run as another user (see acigen/signing.py): give it a
    # readable copy of the signature to verify
    scratch = tempfile.mkdtemp(prefix="acigen-sign-")
    try:
        os.chmod(scratch, 0o755)
        check = os.path.join(scratch, "signature.asc")
        atomic_write(check, signature)
        verify(spec, image, check)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    atomic_write(out, signature)
    return f"signed {image} with key {spec.key} -> {out}"


def body(argv: list[str]) -> int:
    args = parse(argv)
    data = read_json(args.spec) if args.spec else {}
    image = args.image or data.get("image")
    if not isinstance(image, str) or not image:
        raise HelperError("name the file to sign")
    out = args.out or image + ".asc"
    remove_file(out)  # the old signature belongs to the old image
    spec = SignSpec.from_json(data) if args.spec else check_signing(args.key, args.homedir)
    print(sign_file(spec, image, out))
    return ExitCode.OK


def main(argv: list[str] | None = None) -> int:
    return run_main(PROG, body, argv, user_namespace=False)


if __name__ == "__main__":
    raise SystemExit(main())
