"""pip in the image, installed from a pip wheel found on the host.

The wheel is the interpreter's own ensurepip wheel when it has one, else a
distribution's copy (/usr/share/python-wheels, Debian's python3-pip-whl or
Fedora's python-pip-wheel).  Installing a pure wheel is unpacking it into
site-packages, writing its console scripts (with the image's interpreter in
the shebang) and a RECORD that lists everything, so `pip install -U pip`
in the image can replace it cleanly.
"""

from __future__ import annotations

import base64
import configparser
import csv
import glob
import hashlib
import io
import os
import posixpath
import re
import zipfile
from dataclasses import dataclass, field

from acigen.errors import HelperError
from acigen.helpers.python_env.probe import IMAGE_PREFIX, PythonFacts
from acigen.helpers.rootfs.imagewrite import ImageWriter

DISTRO_WHEELS = "/usr/share/python-wheels"
WHEEL_NAME = re.compile(r"^pip-(\d+(?:\.\d+)*)-py3-none-any\.whl$")
VERSIONED_SCRIPT = re.compile(r"^pip\d+\.\d+$")


def find_wheel(facts: PythonFacts) -> str:
    """The newest suitable pip wheel: the interpreter's own first, then the distro's."""
    for directory in (os.path.join(facts.stdlib, "ensurepip", "_bundled"), DISTRO_WHEELS):
        found = []
        for path in glob.glob(os.path.join(glob.escape(directory), "pip-*.whl")):
            match = WHEEL_NAME.match(os.path.basename(path))
            if match and _supports(path, facts.version):
                found.append((tuple(int(n) for n in match.group(1).split(".")), path))
        if found:
            return max(found)[1]
    raise HelperError(f"no pip wheel for Python {facts.short_version} on the host "
                      f"(looked in its ensurepip and in {DISTRO_WHEELS})",
                      hint="install the distribution's pip wheel package (Debian: "
                           "python3-pip-whl), or name a python_exe that has ensurepip")


def _supports(wheel: str, version: tuple[int, int, int]) -> bool:
    """Whether the wheel's Requires-Python admits VERSION (>=, <, != X.Y.* clauses)."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            metadata = _read_dist_info(archive, "METADATA").decode("utf-8", "replace")
    except (OSError, zipfile.BadZipFile, KeyError):
        return False
    line = next((ln for ln in metadata.splitlines() if ln.startswith("Requires-Python:")), "")
    for clause in line.partition(":")[2].split(","):
        match = re.match(r"\s*(>=|>|<=|<|!=|==)\s*([\d.]+)(\.\*)?\s*$", clause)
        if not match:
            continue
        op, bound, star = match.groups()
        want = tuple(int(n) for n in bound.split("."))
        have = version[:len(want)] if star else version
        if not _compare(have, op, want):
            return False
    return True


def _compare(have: tuple[int, ...], op: str, want: tuple[int, ...]) -> bool:
    width = max(len(have), len(want))
    a, b = have + (0,) * (width - len(have)), want + (0,) * (width - len(want))
    return {">=": a >= b, ">": a > b, "<=": a <= b, "<": a < b, "!=": a != b,
            "==": a == b}[op]


def _read_dist_info(archive: zipfile.ZipFile, name: str) -> bytes:
    infos = [n for n in archive.namelist() if re.fullmatch(r"[^/]+\.dist-info/" + name, n)]
    if len(infos) != 1:
        raise KeyError(name)
    return archive.read(infos[0])


@dataclass
class PipInstall:
    """What installing the wheel wrote, for the RECORD."""

    version: str
    dist_info: str  # image path of pip-X.dist-info
    record: list[tuple[str, bytes]] = field(default_factory=list)  # image path, content


def install(writer: ImageWriter, wheel: str, facts: PythonFacts) -> PipInstall:
    """Unpack WHEEL into the image's site-packages and write pip's scripts."""
    purelib = facts.image_purelib
    with zipfile.ZipFile(wheel) as archive:
        names = sorted(i.filename for i in archive.infolist() if not i.is_dir())
        dist_info = _dist_info_dir(names, wheel)
        version = dist_info[len("pip-"):-len(".dist-info")]
        done = PipInstall(version, posixpath.join(purelib, dist_info))
        for name in names:
            if name in (f"{dist_info}/RECORD", f"{dist_info}/INSTALLER") or _windows_only(name):
                continue
            info = archive.getinfo(name)
            data = archive.read(info)
            path = posixpath.join(purelib, name)
            mode = 0o755 if (info.external_attr >> 16) & 0o111 else 0o644
            writer.file(path, data, mode, _zip_time_ns(info))
            done.record.append((path, data))
        entry_points = archive.read(f"{dist_info}/entry_points.txt").decode("utf-8")
    _scripts(writer, entry_points, facts, done)
    installer = posixpath.join(done.dist_info, "INSTALLER")
    writer.file(installer, b"acigen\n")
    done.record.append((installer, b"acigen\n"))
    return done


def _dist_info_dir(names: list[str], wheel: str) -> str:
    for name in names:
        if name.startswith("/") or ".." in name.split("/") or "\\" in name:
            raise HelperError(f"{wheel}: unsafe member name {name!r}")
    tops = {n.split("/", 1)[0] for n in names if n.split("/", 1)[0].endswith(".dist-info")}
    data = {n.split("/", 1)[0] for n in names if n.split("/", 1)[0].endswith(".data")}
    if len(tops) != 1 or data:
        raise HelperError(f"{wheel}: not a pure wheel with one .dist-info directory")
    return tops.pop()


def _windows_only(name: str) -> bool:
    """distlib's script launchers (t64.exe, ...): used only when os.name == 'nt'."""
    return name.endswith(".exe")


def _zip_time_ns(info: zipfile.ZipInfo) -> int:
    import calendar
    return calendar.timegm((*info.date_time, 0, 0, 0)) * 10**9


def _scripts(writer: ImageWriter, entry_points: str, facts: PythonFacts,
             done: PipInstall) -> None:
    parser = configparser.ConfigParser(delimiters=("=",), interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(entry_points)
    scripts = dict(parser["console_scripts"]) if parser.has_section("console_scripts") else {}
    for name, target in sorted(scripts.items()):
        # the wheel names pipX.Y after the Python that built it; ours is the image's
        name = f"pip{facts.short_version}" if VERSIONED_SCRIPT.match(name) else name
        data = console_script(facts.image_executable, target.strip())
        path = posixpath.join(IMAGE_PREFIX, "bin", name)
        writer.file(path, data, 0o755)
        done.record.append((path, data))


def console_script(python: str, target: str) -> bytes:
    """A launcher for entry point TARGET ('package.module:function')."""
    module, _, attr = (part.strip() for part in target.partition(":"))
    head = attr.split(".", 1)[0]
    return (f"#!{python}\n"
            "import sys\n"
            f"from {module} import {head}\n\n"
            "if __name__ == \"__main__\":\n"
            f"    sys.exit({attr}())\n").encode()


def write_record(writer: ImageWriter, done: PipInstall) -> None:
    """RECORD: every installed file with its hash (pip's uninstall reads it)."""
    site = posixpath.dirname(done.dist_info)
    record_path = posixpath.join(done.dist_info, "RECORD")
    rows = [(posixpath.relpath(path, site), _hash(data), str(len(data)))
            for path, data in done.record]
    rows.append((posixpath.relpath(record_path, site), "", ""))
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(sorted(rows))
    writer.file(record_path, out.getvalue().encode())


def _hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"
