"""What the compiler and the helpers both assume about the files between them.

The compiler writes a spec file per edge (step, image, fetch, sign); the
helper that ninja runs reads it.  The names and defaults both sides rely on
are written here, once.
"""

from __future__ import annotations

# The PATH an image's programs get when nothing says otherwise (the OCI
# runtime's and Docker's default).
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# The manifest key holding the build steps; the packed manifest leaves it out.
STEPS_KEY = "-aci-packer-build-steps-"
