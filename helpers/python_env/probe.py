"""Ask a host Python where its parts are.

Running the host's interpreter is fine: it is the host's own program, not
image content.  It runs with an empty environment and without site, so what
it reports is its compiled-in layout, not this shell's settings.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass

from acigen.errors import HelperError

MIN_VERSION = (3, 8)
IMAGE_PREFIX = "/usr"

# Runs under the probed interpreter: Python >= 3.8 syntax and stdlib only.
PROBE = r"""
import importlib.util, json, os, sys, sysconfig

def dynload():
    for entry in sys.path:
        if os.path.basename(entry) == "lib-dynload" and os.path.isdir(entry):
            return entry
    return sysconfig.get_config_var("DESTSHARED")

def verify_paths():
    try:
        import ssl
    except ImportError:
        return None
    paths = ssl.get_default_verify_paths()
    return [paths.openssl_cafile, paths.openssl_capath]

image = dict.fromkeys(("base", "platbase", "installed_base", "installed_platbase"), sys.argv[1])
json.dump({
    "implementation": sys.implementation.name,
    "version": list(sys.version_info[:3]),
    "executable": sys.executable,
    "base_executable": getattr(sys, "_base_executable", None),
    "in_venv": sys.prefix != sys.base_prefix,
    "base_prefix": sys.base_prefix,
    "base_exec_prefix": sys.base_exec_prefix,
    "stdlib": sysconfig.get_path("stdlib"),
    "dynload": dynload(),
    "cache_tag": sys.implementation.cache_tag,
    "magic": importlib.util.MAGIC_NUMBER.hex(),
    "image_purelib": sysconfig.get_path("purelib", vars=image),
    "verify_paths": verify_paths(),
}, sys.stdout)
"""


@dataclass(frozen=True)
class PythonFacts:
    """A host interpreter's layout, and where its pieces go in the image."""

    requested: str  # what the step named (may be a symlink, a shim or a venv's python)
    executable: str  # the real interpreter binary on the host
    version: tuple[int, int, int]
    prefix: str  # sys.base_prefix on the host
    exec_prefix: str
    stdlib: str  # host directories
    dynload: str
    cache_tag: str  # e.g. cpython-311
    image_purelib: str  # where pip installs in the image (the image's sysconfig scheme)
    openssl_cafile: str | None  # the copied OpenSSL's default CA file and directory
    openssl_capath: str | None

    @property
    def short_version(self) -> str:
        return f"{self.version[0]}.{self.version[1]}"

    @property
    def full_version(self) -> str:
        return ".".join(map(str, self.version))

    def image_path(self, host_path: str, host_prefix: str) -> str:
        """HOST_PATH under HOST_PREFIX, moved to the same place under /usr."""
        rel = os.path.relpath(host_path, host_prefix)
        if rel.startswith(".."):
            raise HelperError(f"{self.executable}: {host_path} is outside its prefix "
                              f"{host_prefix}; this layout is not supported")
        return os.path.normpath(os.path.join(IMAGE_PREFIX, rel))

    @property
    def image_stdlib(self) -> str:
        return self.image_path(self.stdlib, self.prefix)

    @property
    def image_dynload(self) -> str:
        return self.image_path(self.dynload, self.exec_prefix)

    @property
    def image_executable(self) -> str:
        return f"{IMAGE_PREFIX}/bin/python{self.short_version}"


def probe(python: str) -> PythonFacts:
    """Facts about the interpreter PYTHON; a venv's python gives its base interpreter."""
    raw = _run_probe(python)
    if raw["in_venv"]:
        base = raw.get("base_executable")
        if not base or os.path.realpath(base) == os.path.realpath(raw["executable"]):
            base = os.path.realpath(raw["executable"])
        raw = _run_probe(base)
        if raw["in_venv"]:
            raise HelperError(f"{python} is a virtualenv's python and its base interpreter "
                              "could not be found", hint="name the base interpreter in "
                              "python_exe")
    return _facts(python, raw)


def _run_probe(python: str) -> dict:
    python = os.path.abspath(python)
    if not os.path.exists(python):
        raise HelperError(f"python_exe {python}: no such file on the host")
    if not os.access(python, os.X_OK) or os.path.isdir(python):
        raise HelperError(f"python_exe {python}: not an executable file")
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"}
    try:
        done = subprocess.run([python, "-S", "-s", "-c", PROBE, IMAGE_PREFIX], env=env,
                              capture_output=True, cwd="/", timeout=60,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise HelperError(f"python_exe {python}: cannot run it: {exc}") from None
    try:
        found = json.loads(done.stdout)
    except ValueError:
        found = None
    if done.returncode != 0 or not isinstance(found, dict):
        raise HelperError(f"python_exe {python}: not a usable Python 3 interpreter "
                          f"({_why(done)})",
                          hint=f"create_python_env needs CPython >= {_dotted(MIN_VERSION)}")
    return found


def _facts(requested: str, raw: dict) -> PythonFacts:
    version = tuple(raw["version"])
    if raw["implementation"] != "cpython" or version < MIN_VERSION:
        raise HelperError(f"python_exe {requested} is {raw['implementation']} "
                          f"{_dotted(version)}; create_python_env needs CPython >= "
                          f"{_dotted(MIN_VERSION)}")
    if not raw["dynload"] or not os.path.isdir(raw["dynload"]):
        raise HelperError(f"python_exe {requested}: its lib-dynload directory was not found")
    verify = raw["verify_paths"] or [None, None]
    return PythonFacts(
        requested=requested, executable=os.path.realpath(raw["executable"]),
        version=version,  # type: ignore[arg-type]
        prefix=raw["base_prefix"], exec_prefix=raw["base_exec_prefix"],
        stdlib=raw["stdlib"], dynload=raw["dynload"], cache_tag=raw["cache_tag"],
        image_purelib=raw["image_purelib"], openssl_cafile=verify[0], openssl_capath=verify[1])


def _why(done: subprocess.CompletedProcess[bytes]) -> str:
    lines = done.stderr.decode(errors="replace").strip().splitlines()
    if lines and len(lines[-1]) <= 160:
        return lines[-1]
    return f"exit status {done.returncode}" if done.returncode else "it printed no facts"


def _dotted(version: tuple[int, ...]) -> str:
    return ".".join(map(str, version))
