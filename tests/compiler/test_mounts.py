"""Reading mount tables: what gc looks at before it removes anything."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from acigen.helpers.core.mounts import mount_points, mounted_under

TABLE = (
    "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
    "95 22 0:50 / /srv/build\\040dir/.acigen/layers/x/mnt rw - overlay overlay rw\n"
    "96 22 0:51 / /srv/tab\\011and\\134back rw - tmpfs none rw\n"
)


def test_mount_points_are_unescaped() -> None:
    assert mount_points(TABLE) == ["/", "/srv/build dir/.acigen/layers/x/mnt",
                                   "/srv/tab\tand\\back"]


@pytest.mark.needs_root
def test_a_mount_in_another_namespace_is_seen(tmp_path: Path, no_mount_leaks) -> None:
    target = tmp_path / "build dir" / "mnt"
    target.mkdir(parents=True)
    assert mounted_under(str(tmp_path)) == []
    with subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c",
                           f"mount -t tmpfs t '{target}' && echo ready && exec sleep 600"],
                          stdout=subprocess.PIPE, text=True) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "ready\n"
            assert mounted_under(str(tmp_path)) == [str(target)]
            assert mounted_under(str(tmp_path / "elsewhere")) == []
        finally:
            holder.kill()
    assert mounted_under(str(tmp_path)) == []
