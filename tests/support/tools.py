"""External tools the tests use: actool (appc's validator), runc, ninja."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.rootfs import cache_dir


def actool() -> str:
    """appc's own validator, built from Debian's Go packages if needed."""
    found = os.environ.get("ACTOOL") or shutil.which("actool")
    if found:
        return found
    local = Path(sys.prefix) / "bin" / "actool"
    if local.exists():
        return str(local)
    built = cache_dir() / "actool"
    if not built.exists():
        env = dict(os.environ, GOPATH="/usr/share/gocode", GO111MODULE="off",
                   GOCACHE=str(cache_dir() / "gocache"))
        subprocess.run(["go", "build", "-o", str(built), "github.com/appc/spec/actool"],
                       check=True, env=env)
    return str(built)


def validate_aci(path: str | os.PathLike[str]) -> None:
    """Fail the test unless `actool validate` accepts the image."""
    result = subprocess.run([actool(), "-debug", "validate", str(path)],
                            capture_output=True, text=True)
    assert result.returncode == 0, f"actool validate {path}:\n{result.stdout}{result.stderr}"


def ninja() -> str:
    """The ninja that acigen's PyPI dependency installs."""
    import ninja as ninja_pkg
    return os.path.join(ninja_pkg.BIN_DIR, "ninja")
