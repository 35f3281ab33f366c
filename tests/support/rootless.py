"""Building as an ordinary user, from tests that run as root (as CI does).

A test user is made once per machine (useradd, and usermod --add-subuids /
--add-subgids for one with a subordinate range); it builds with
`runuser -u USER --`.  The test's own Python may live where that user
cannot reach (a pyenv under a 0700 home), so the user gets a Python of its
own: a venv on the system's python3 holding a copy of acigen's source, laid
out as installed, and of its dependencies.  Copies, not links: they work
wherever the checkout and the test venv lie.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import pwd
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
SYSTEM_PYTHON = "/usr/bin/python3"
# distributions: acigen's dependencies, and ansible-core's (not the `ansible`
# bundle's collections: the ansible step's connection plugin is acigen's own)
DEPENDENCIES = ("jinja2", "markupsafe", "requests", "urllib3", "idna", "certifi",
                "charset-normalizer", "pyelftools", "ninja", "ansible-core", "pyyaml",
                "cryptography", "cffi", "pycparser", "packaging", "resolvelib")
RANGE = 65536  # ids a user with a range gets: as useradd gives by default
SUBID_FILES = ("/etc/subuid", "/etc/subgid")
FUSE_DEVICE = "/dev/fuse"


def _exists(user: str) -> bool:
    try:
        pwd.getpwnam(user)
        return True
    except KeyError:
        return False


def _ranges_of(user: str, path: str) -> list[str]:
    with open(path, encoding="utf-8") as src:
        return [line for line in src if line.split(":")[0] == user]


def _free_range_start() -> int:
    """Past every range in /etc/subuid and /etc/subgid (and at least 100000)."""
    end = 100000
    for path in SUBID_FILES:
        with open(path, encoding="utf-8") as src:
            for line in src:
                fields = line.strip().split(":")
                if len(fields) == 3 and fields[1].isdigit() and fields[2].isdigit():
                    end = max(end, int(fields[1]) + int(fields[2]))
    return end


def ensure_user(user: str, subordinate: bool) -> None:
    """USER exists, with a subordinate id range or with none (idempotent)."""
    if not _exists(user):
        subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        "-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0", user],
                       check=True, capture_output=True)
    has = all(_ranges_of(user, path) for path in SUBID_FILES)
    if subordinate and not has:
        start = _free_range_start()
        ids = f"{start}-{start + RANGE - 1}"
        subprocess.run(["usermod", "--add-subuids", ids, "--add-subgids", ids, user],
                       check=True, capture_output=True)
    if not subordinate and any(_ranges_of(user, path) for path in SUBID_FILES):
        raise RuntimeError(f"test user {user} must have no subordinate ids")


def user_python(home: Path) -> str:
    """A python3 under HOME that USER can run, with acigen importable; its path."""
    venv = home / "venv"
    subprocess.run([SYSTEM_PYTHON, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python3"
    site = Path(subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True).stdout.strip())
    package = site / "acigen"
    shutil.copytree(REPO / "acigen", package, ignore=shutil.ignore_patterns("__pycache__"))
    for sub in ("helpers", "templates"):
        shutil.copytree(REPO / sub, package / sub, ignore=shutil.ignore_patterns("__pycache__"))
    for name in DEPENDENCIES:
        _copy_distribution(name, site)
    playbook = venv / "bin" / "ansible-playbook"
    playbook.write_text(f"#!{python}\nimport sys\nfrom ansible.cli.playbook import main\n"
                        "sys.exit(main())\n")
    playbook.chmod(0o755)
    return str(python)


def _copy_distribution(name: str, site: Path) -> None:
    """The files distribution NAME installed in site-packages, with its metadata."""
    dist = importlib.metadata.distribution(name)
    for entry in dist.files or ():
        if "__pycache__" in entry.parts:
            continue
        if entry.parts[0] == ".." and entry.name != "ninja":
            continue  # scripts in bin/ name this Python: only ninja's own binary is needed
        source = Path(str(dist.locate_file(entry)))
        if source.is_file():
            (site / entry).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, site / entry)


def same_python_version() -> bool:
    """Whether the system python3 can load the test venv's compiled modules."""
    if not os.path.exists(SYSTEM_PYTHON):
        return False
    out = subprocess.run([SYSTEM_PYTHON, "-c", "import sys; print(sys.version_info[:2])"],
                         capture_output=True, text=True).stdout.strip()
    return out == str(sys.version_info[:2])


def give_to(path: Path, user: str) -> None:
    """PATH (a tree) owned by USER, except a build directory .acigen in it:
    its layers hold image owners (and, rootless, the user's subordinate ids)."""
    owner = f"{pwd.getpwnam(user).pw_uid}:{pwd.getpwnam(user).pw_gid}"
    subprocess.run(["chown", owner, str(path)], check=True)
    inside = [str(p) for p in path.iterdir() if p.name != ".acigen"]
    if inside:
        subprocess.run(["chown", "-R", owner, *inside], check=True)


def as_user(user: str, argv: list[str], cwd: Path,
            timeout: float = 3600) -> subprocess.CompletedProcess[str]:
    """Run ARGV as USER in CWD, with a plain environment."""
    env = ["env", "-i", "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
           "LANG=C.UTF-8", f"HOME={cwd}"]
    return subprocess.run(["runuser", "-u", user, "--", *env, *argv], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


@contextlib.contextmanager
def fuse_device_for(user: str) -> Iterator[None]:
    """USER may open /dev/fuse (an ACL entry) while the block runs; the
    device's ACL is put back as it was afterwards.  Many hosts make it
    0666; where it is root's alone, a test grants it to its own user only."""
    saved = subprocess.run(["getfacl", "--absolute-names", "-c", FUSE_DEVICE], check=True,
                           capture_output=True, text=True).stdout
    subprocess.run(["setfacl", "-m", f"u:{user}:rw", FUSE_DEVICE], check=True)
    try:
        yield
    finally:
        subprocess.run(["setfacl", "--set-file=-", FUSE_DEVICE], input=saved, text=True,
                       check=True)
