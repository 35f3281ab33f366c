"""Programs on the build host that steps run: found one way, by the
compiler (which says early when one is missing) and by the helper that
runs it."""

from __future__ import annotations

import os
import shutil
import sys

from acigen.errors import HelperError
from acigen.specs import DEFAULT_PATH


def find_ansible_playbook() -> str:
    override = os.environ.get("ACIGEN_ANSIBLE_PLAYBOOK")
    if override:
        if os.path.isfile(override) and os.access(override, os.X_OK):
            return override
        raise HelperError(f"ACIGEN_ANSIBLE_PLAYBOOK={override} is not an executable file")
    search = os.pathsep.join([os.path.dirname(sys.executable),
                              os.environ.get("PATH", DEFAULT_PATH)])
    found = shutil.which("ansible-playbook", path=search)
    if not found:
        raise HelperError(f"ansible-playbook not found (looked in {search})",
                          hint="install it where acigen runs: pip install 'acigen[ansible]'")
    return found
