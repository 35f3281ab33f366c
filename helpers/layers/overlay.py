"""The one overlayfs mounter: of the layers' views and of `acigen run`'s
throw-away root.

redirect_dir=off: renaming a directory of a lower layer then fails with
EXDEV and tools fall back to copying it, so the upper dir holds the whole
directory under its new name.  With redirect_dir on, the upper would hold
only a trusted.overlay.redirect xattr pointing into the lower layer, which
a layer read as a tar file (pack, oci) cannot express: the image would lose
the directory's contents.  Only the layers need this, but one setting for
both keeps a program behaving the same in a build step and in acigen run,
whatever the kernel's default.  index=off, metacopy=off: likewise, an
upper dir that is complete on its own.

In a user namespace (rootless builds) the kernel keeps overlayfs' own
metadata in user.overlay.* xattrs (userxattr), and refuses redirect_dir=off
there (on 6.x `off` means "follow, do not create", which needs trusted
xattrs): nofollow is allowed and, since neither setting ever creates a
redirect, the upper dirs hold the same as a root build's.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from acigen.helpers.core.linux import MS_RDONLY, mount
from acigen.helpers.core.userns import in_user_namespace

ROOT_OPTIONS = ",redirect_dir=off,index=off,metacopy=off"
USERNS_OPTIONS = ",userxattr,redirect_dir=nofollow,index=off,metacopy=off"


def relative_options(lower: Sequence[str], target: str, upper: str | None,
                     work: str | None) -> tuple[str, str, str]:
    """(common directory, lowerdir/upperdir/workdir options, target), the paths
    relative to the common directory: for the kernel's overlay and for
    fuse-overlayfs alike."""
    paths = [*lower] + ([upper, work] if upper and work else []) + [target]
    base = os.path.commonpath([os.path.abspath(p) for p in paths])
    rel = [os.path.relpath(os.path.abspath(p), base) for p in paths]
    opts = "lowerdir=" + ":".join(rel[: len(lower)])
    if upper:
        opts += f",upperdir={rel[-3]},workdir={rel[-2]}"
    return base, opts, rel[-1]


def mount_overlay(lower: Sequence[str], target: str, upper: str | None = None,
                  work: str | None = None) -> None:
    """Mount an overlay of LOWER (nearest first) at TARGET: read-only
    without UPPER, else writable with UPPER and WORK.  OSError if it fails.

    Paths are passed relative to their common directory, which becomes our
    working directory for the mount call: the option string is limited to a
    page, and ',' or ':' in the build path would break it.
    """
    base, opts, rel_target = relative_options(lower, target, upper, work)
    opts += USERNS_OPTIONS if in_user_namespace() else ROOT_OPTIONS
    old = os.getcwd()
    os.chdir(base)
    try:
        mount("overlay", rel_target, "overlay", MS_RDONLY if upper is None else 0, opts)
    finally:
        os.chdir(old)
