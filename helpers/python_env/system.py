"""What a Python needs around it in an image: names, identities, a temp dir, CA certificates.

Each piece is added only where the image has none, except the /usr/bin/python*
and pip* names, which point at the Python this step installs (the messages
say which existing ones were replaced).
"""

from __future__ import annotations

import os
import posixpath

from acigen.helpers.python_env.probe import IMAGE_PREFIX, PythonFacts
from acigen.helpers.rootfs.imagewrite import ImageWriter

PASSWD = b"root:x:0:0:root:/root:/bin/sh\n"
GROUP = b"root:x:0:\n"
IMAGE_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
PIP_CONF = "/etc/pip.conf"
# pip verifies with its own bundled certifi, not OpenSSL's default file: its
# site-wide configuration points it at the image's bundle
PIP_CONF_TEXT = f"[global]\ncert = {IMAGE_CA_BUNDLE}\n".encode()
HOST_CA_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Alpine, Arch
                   "/etc/pki/tls/certs/ca-bundle.crt",  # Fedora, RHEL
                   "/etc/ssl/ca-bundle.pem",  # openSUSE
                   "/etc/ssl/cert.pem")


def command_names(facts: PythonFacts) -> dict[str, str]:
    """/usr/bin names -> link targets for the interpreter."""
    target = posixpath.basename(facts.image_executable)
    return {f"{IMAGE_PREFIX}/bin/{name}": target
            for name in ("python", f"python{facts.version[0]}")}


def link_commands(writer: ImageWriter, facts: PythonFacts) -> None:
    for path, target in command_names(facts).items():
        writer.symlink(path, target)


def identities(writer: ImageWriter) -> list[str]:
    """A root user and group, when the image has no passwd/group at all."""
    made = []
    for path, data in (("/etc/passwd", PASSWD), ("/etc/group", GROUP)):
        if not writer.exists(path):
            writer.file(path, data, 0o644)
            made.append(path)
    return made


def temp_dir(writer: ImageWriter) -> bool:
    """/tmp (mode 1777): tempfile and pip want one."""
    if writer.exists("/tmp"):
        return False
    writer.mkdirs("/tmp", mode=0o1777)
    return True


def host_ca_bundle(facts: PythonFacts) -> str | None:
    """The host's CA bundle: the copied OpenSSL's own default file first."""
    candidates = [facts.openssl_cafile] if facts.openssl_cafile else []
    for path in [*candidates, *HOST_CA_BUNDLES]:
        if os.path.isfile(path) and os.path.getsize(path) > 0:
            return os.path.realpath(path)
    return None


def ca_certificates(writer: ImageWriter, facts: PythonFacts) -> str | None:
    """Put the host's CA bundle where the image's OpenSSL looks by default.

    The bundle goes to /etc/ssl/certs/ca-certificates.crt (unless the image has
    one) and OpenSSL's compiled-in default file (e.g. /usr/lib/ssl/cert.pem)
    points at it, so ssl.create_default_context() trusts the same CAs as the
    host.  Returns the host file read, or None when nothing was needed or found.
    """
    bundle = host_ca_bundle(facts)
    if bundle is None:
        return None
    read = None
    if not writer.exists(IMAGE_CA_BUNDLE):
        with open(bundle, "rb") as src:
            writer.file(IMAGE_CA_BUNDLE, src.read(), 0o644, os.stat(bundle).st_mtime_ns)
        read = bundle
    cafile = facts.openssl_cafile
    if cafile and cafile != IMAGE_CA_BUNDLE and not writer.exists(cafile):
        writer.symlink(cafile, IMAGE_CA_BUNDLE)
    return read


def pip_trusts_bundle(writer: ImageWriter) -> bool:
    """/etc/pip.conf naming the image's CA bundle, so pip trusts what
    ssl.create_default_context() trusts (a TLS-intercepting proxy's CA the
    host trusts, too).  Not when the image has no bundle or its own pip.conf."""
    if not writer.exists(IMAGE_CA_BUNDLE) or writer.exists(PIP_CONF):
        return False
    writer.file(PIP_CONF, PIP_CONF_TEXT, 0o644)
    return True
