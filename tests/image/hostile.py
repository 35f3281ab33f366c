"""Generate the hostile archives the image step must refuse.

    python -m tests.image.hostile DEST SENTINEL

writes one .tar per case into DEST.  Symlinks and hard links in them aim at
SENTINEL (a directory outside the root) so that a helper that followed them
would visibly change it.  Each case comes with the error it must produce.
"""

from __future__ import annotations

import io
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Case:
    name: str
    error: str  # a regular expression the one-line error must match
    members: tuple[tarfile.TarInfo | tuple[tarfile.TarInfo, bytes], ...]
    fmt: int = tarfile.PAX_FORMAT


def _file(name: str, data: bytes = b"planted\n") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    return info, data


def _entry(name: str, kind: bytes, link: str = "", major: int = 0,
           minor: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    info.devmajor, info.devminor = major, minor
    return info


def cases(sentinel: Path) -> list[Case]:
    s = str(sentinel)
    sym, hard, dir_ = tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.DIRTYPE
    long_part = "p" * 120  # forces a pax (or GNU long-name) record
    return [
        Case("dotdot", r"member '\.\./escape': its path '\.\./escape' leaves the root",
             (_file("../escape"),)),
        Case("dotdot-inside", r"member 'a/\.\./\.\./escape': its path .* leaves the root",
             (_entry("a", dir_), _file("a/../../escape"))),
        Case("dotdot-pax-path", rf"member '{long_part}/\.\./\.\./\.\./pax-escape': its path",
             (_file(f"{long_part}/../../../pax-escape"),)),
        Case("dotdot-gnu-longname", rf"member '{long_part}/\.\./\.\./gnu-escape': its path",
             (_file(f"{long_part}/../../gnu-escape"),), tarfile.GNU_FORMAT),
        Case("write-through-own-symlink",
             r"member 'link/planted': written through 'link', a symlink this archive created",
             (_entry("link", sym, s), _file("link/planted"))),
        Case("relative-symlink-escape",
             r"member 'd/up/tmp/planted': written through 'd/up', a symlink this archive",
             (_entry("d", dir_), _entry("d/up", sym, "../../../../../../../.."),
              _file("d/up/tmp/planted"))),
        Case("symlink-replaces-directory",
             r"member 'etc/passwd': written through 'etc', a symlink this archive created",
             (_entry("etc", dir_), _file("etc/ok"), _entry("etc", sym, s),
              _file("etc/passwd"))),
        Case("directory-through-symlink",
             r"member 'l/newdir/': written through 'l', a symlink this archive created",
             (_entry("l", sym, s), _entry("l/newdir", dir_))),
        Case("symlink-through-symlink",
             r"member 'l/evil': written through 'l', a symlink this archive created",
             (_entry("l", sym, s), _entry("l/evil", sym, "/etc/shadow"))),
        Case("hardlink-dotdot",
             r"member 'h': hard link target '\.\./\.\./sentinel/secret' leaves the root",
             (_entry("h", hard, "../../sentinel/secret"),)),
        Case("hardlink-absolute-host-path",
             rf"member 'h': hard link to '{s}/secret', which is not an earlier member",
             (_entry("h", hard, f"{s}/secret"),)),
        Case("hardlink-forward",
             r"member 'h': hard link to 'later', which is not an earlier member",
             (_entry("h", hard, "later"), _file("later"))),
        Case("hardlink-through-own-symlink",
             r"member 'h': hard link target reached through 'l', a symlink this archive",
             (_entry("l", sym, s), _entry("h", hard, "l/secret"))),
        Case("write-through-hard-link-to-own-symlink",
             r"member 'h/planted': written through 'h', a symlink this archive created",
             (_entry("l", sym, s), _entry("h", hard, "l"), _file("h/planted"))),
        Case("char-device", r"member 'dev/mem': device nodes are not allowed here",
             (_entry("dev", dir_), _entry("dev/mem", tarfile.CHRTYPE, major=1, minor=1))),
        Case("block-device", r"member 'dev/sda': device nodes are not allowed here",
             (_entry("dev", dir_), _entry("dev/sda", tarfile.BLKTYPE, major=8, minor=0))),
        Case("unknown-type", r"member 'mystery': unknown member type 'Z'",
             (_entry("mystery", b"Z"),)),
        Case("gnu-sparse", r"member 'holes': GNU sparse files are not supported",
             (_entry("holes", tarfile.GNUTYPE_SPARSE),), tarfile.GNU_FORMAT),
    ]


def write(case: Case, dest: Path) -> Path:
    path = dest / f"{case.name}.tar"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=case.fmt) as tar:
        for member in case.members:
            if isinstance(member, tuple):
                tar.addfile(member[0], io.BytesIO(member[1]))
            else:
                tar.addfile(member)
    path.write_bytes(buf.getvalue())
    return path


def build_corpus(dest: Path, sentinel: Path) -> list[tuple[Case, Path]]:
    dest.mkdir(parents=True, exist_ok=True)
    return [(case, write(case, dest)) for case in cases(sentinel)]


if __name__ == "__main__":
    for case, path in build_corpus(Path(sys.argv[1]), Path(sys.argv[2])):
        print(f"{path}: must fail with /{case.error}/")
