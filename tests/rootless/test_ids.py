"""The id mapping a rootless helper asks newuidmap/newgidmap for."""

from __future__ import annotations

from pathlib import Path

from acigen.helpers.core import userns


def test_ranges_by_name_or_uid_in_file_order(tmp_path: Path) -> None:
    subuid = tmp_path / "subuid"
    subuid.write_text("other:100000:65536\nbuilder:165536:65536\n# comment\nbad line\n"
                      "1002:300000:1000\nbuilder:x:5\nbuilder:400000:0\n")
    ranges = userns.subordinate_ranges(str(subuid), "builder", 1002)
    assert ranges == [(165536, 65536), (300000, 1000)]
    assert userns.subordinate_ranges(str(tmp_path / "missing"), "builder", 1002) == []


def test_map_puts_the_user_at_0_and_ranges_after_it() -> None:
    args = userns.id_map_args(1002, [(165536, 65536), (300000, 1000)])
    assert args == ["0", "1002", "1", "1", "165536", "65536", "65537", "300000", "1000"]
    assert userns.id_map_args(1002, []) == ["0", "1002", "1"]


def test_a_host_file_keeps_its_host_owner() -> None:
    # inside the namespace: 0 is the user, the overflow id an unmapped (root's) file
    assert userns._host_id(0, 1002, 65534) == 1002
    assert userns._host_id(65534, 1002, 65534) == 0
    assert userns._host_id(33, 1002, 65534) == 33


def test_the_hint_names_the_files_and_the_command() -> None:
    hint = userns.add_range_hint()
    assert "/etc/subuid" in hint and "/etc/subgid" in hint
    assert "usermod --add-subuids 100000-165535 --add-subgids 100000-165535" in hint
