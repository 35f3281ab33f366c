"""The output formats beyond build.ninja: dot, make, embedded files.

Byte-for-byte output is in the golden cases; these tests cover what goldens
cannot: hostile names, refusals, and the tools' own verdicts.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from acigen import cli
from acigen.errors import AcigenError
from acigen.escape import dot_string, make_path, make_recipe
from acigen.invocation import UNNAMED, embed_base
from tests.support.trees import deep_tree

STEPS = "-aci-packer-build-steps-"


def manifest(path: Path, steps: list[dict]) -> Path:
    path.write_text(json.dumps({"name": "example.com/t", STEPS: steps}))
    return path


def run(work: Path, *args: str, capsys) -> tuple[int, str, str]:
    old = os.getcwd()
    os.chdir(work)
    try:
        code = cli.main(list(args))
    finally:
        os.chdir(old)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def listing(top: Path) -> dict[str, bytes]:
    return {str(p.relative_to(top)): p.read_bytes() for p in top.rglob("*") if p.is_file()}


def test_dot_strings_survive_quotes_backslashes_and_newlines() -> None:
    assert dot_string('say "hi"', "C:\\dir") == '"say \\"hi\\"\\nC:\\\\dir"'
    assert dot_string("two\nlines") == '"two lines"'


def test_dot_of_hostile_file_names_is_accepted_by_graphviz(tmp_path: Path, capsys) -> None:
    weird = 'we"ird\\ name $x {}.sh'
    (tmp_path / weird).write_text("#!/bin/sh\n")
    manifest(tmp_path / "app.json", [
        {"type": "copy_host_files", "files": [[weird, "/srv/x.sh"]]},
        {"type": "cmd", "path": weird, "args": ['"quoted"', "back\\slash"]}])
    before = listing(tmp_path)
    code, out, err = run(tmp_path, "--dot", "app.json", capsys=capsys)
    assert code == 0, err
    assert listing(tmp_path) == before, "--dot must write nothing"
    svg = subprocess.run(["dot", "-Tsvg"], input=out, capture_output=True, text=True)
    assert svg.returncode == 0, svg.stderr
    assert "we&quot;ird\\ name $x {}.sh" in svg.stdout


def test_dot_labels_show_single_quotes_as_a_person_writes_them(tmp_path: Path,
                                                               capsys) -> None:
    manifest(tmp_path / "app.json", [
        {"type": "copy_host_files", "binaries": ["/bin/sh"]},
        {"type": "cmd", "copy": False, "path": "/usr/bin/python3",
         "args": ["-c", "print('Hello World')", "it's $HOME"]}])
    code, out, err = run(tmp_path, "--dot", "app.json", capsys=capsys)
    assert code == 0, err
    [label] = [line for line in out.splitlines() if "step 2 cmd" in line]
    # still a shell word each (the $ one keeps shlex's spelling: it must not expand)
    assert """python3 -c \\"print('Hello World')\\" 'it'\\"'\\"'s $HOME'""" in label, label


def test_dot_draws_a_shared_layer_once(tmp_path: Path, capsys) -> None:
    (tmp_path / "a.txt").write_text("a")
    base = [{"type": "copy_host_files", "files": [["a.txt", "/a"]]}]
    manifest(tmp_path / "one.json", [*base, {"type": "cmd", "copy": False, "path": "/x"}])
    manifest(tmp_path / "two.json", [*base, {"type": "cmd", "copy": False, "path": "/y"}])
    code, out, _ = run(tmp_path, "--dot", "one.json", "two.json", capsys=capsys)
    assert code == 0
    layer_nodes = [line for line in out.splitlines() if '"layer:' in line and "->" not in line]
    assert len(layer_nodes) == 3
    assert sum("one, two" in line for line in layer_nodes) == 1


@pytest.mark.parametrize("path", ["a b", "a:b", "x#y", "p%", "k=v", "*.c", "a(b)", "~x",
                                  "d$x", "q'", 'q"', "back\\slash"])
def test_make_refuses_paths_it_cannot_name(path: str) -> None:
    with pytest.raises(AcigenError, match="a Makefile cannot name this path"):
        make_path(path)


def test_make_recipes_quote_for_the_shell_then_for_make() -> None:
    assert make_recipe(["printf", "%s", "$HOME's"]) == "printf %s '$$HOME'\"'\"'s'"


def test_make_with_an_unnameable_path_writes_nothing(tmp_path: Path, capsys) -> None:
    (tmp_path / "my script.sh").write_text("#!/bin/sh\n")
    manifest(tmp_path / "app.json", [
        {"type": "copy_host_files", "binaries": ["/bin/sh"]},
        {"type": "cmd", "path": "my script.sh"}])
    before = listing(tmp_path)
    code, _, err = run(tmp_path, "--format", "make", "app.json", capsys=capsys)
    assert code == 1
    assert err.splitlines()[0] == ("acigen: error: 'my script.sh': a Makefile cannot name "
                                   "this path (spaces and ':#%=*?[]()$\\' and quotes have "
                                   "meanings there)")
    assert listing(tmp_path) == before


def test_embed_base_is_the_directory_prefix_is_relative_to() -> None:
    assert embed_base("/proj/image", "image") == "/proj"
    assert embed_base("/proj/a/b", "a/b") == "/proj"
    assert embed_base("/proj/image", ".") == "/proj/image"
    # a parent in a sibling directory: its name is unknown, only lexical use
    assert embed_base("/proj/image", "../image") == f"/proj/{UNNAMED}-0"
    assert os.path.relpath("/proj/image/x", embed_base("/proj/image", "../image")) == \
        "../image/x"


@pytest.mark.parametrize(("prefix", "message"), [
    ("/abs", "PREFIX must be a relative path"),
    ("other", "does not end in other"),
])
def test_embed_prefix_must_lead_to_the_file(prefix: str, message: str) -> None:
    with pytest.raises(AcigenError, match=message):
        embed_base("/proj/image", prefix)


@pytest.mark.parametrize("args", [
    ["--dot", "-b"], ["--dot", "--embed", "x"], ["--embed", "x", "-b"],
    ["--explain", "--format", "make"], ["--explain", "-b"],
])
def test_options_that_do_not_fit_together(tmp_path: Path, capsys, args: list[str]) -> None:
    manifest(tmp_path / "app.json", [{"type": "copy_host_files", "binaries": ["/bin/sh"]}])
    code, _, err = run(tmp_path, *args, "app.json", capsys=capsys)
    assert code == 2 and err.startswith("acigen: error: "), err  # a usage error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.json"]


@pytest.mark.parametrize("image_exists", [False, True])
def test_the_originals_command_line_names_o_and_b(tmp_path: Path, capsys,
                                                  image_exists: bool) -> None:
    """aci-packer's `-C xz hello_world.json hello_world.aci`, whether or not
    the image is there yet: one line saying how acigen writes it."""
    manifest(tmp_path / "hello_world.json", [{"type": "copy_host_files",
                                              "binaries": ["/bin/sh"]}])
    if image_exists:
        (tmp_path / "hello_world.aci").write_bytes(b"\xfd7zXZ\0 an old image")
    before = listing(tmp_path)
    code, _, err = run(tmp_path, "-C", "xz", "hello_world.json", "hello_world.aci",
                       capsys=capsys)
    assert (code, err) == (2, "acigen: error: hello_world.aci: an image is not a manifest; "
                              "to build it, as aci-packer's `MANIFEST OUT.aci` did: "
                              "acigen -b -o hello_world.aci hello_world.json\n")
    assert listing(tmp_path) == before


def test_embedded_paths_in_side_files_are_prefixed(tmp_path: Path, capsys) -> None:
    image = tmp_path / "image"
    image.mkdir()
    manifest(image / "app.json", [
        {"type": "copy_host_files", "files": [["../out/tool", "/usr/bin/tool"]]}])
    code, _, err = run(tmp_path, "--embed", "image", "-f", "image/app.ninja",
                       "image/app.json", capsys=capsys)
    assert code == 0, err  # ../out/tool does not exist yet: a parent rule builds it
    step = json.loads(next((image / ".acigen" / "steps").glob("*.json")).read_text())
    assert step["step"]["files"] == [["out/tool", "/usr/bin/tool"]]
    assert step["layer"].startswith("image/.acigen/layers/")
    text = (image / "app.ninja").read_text()
    assert "builddir" not in text and "\ndefault" not in text and "acigen_regen" not in text


def test_two_embedded_files_live_in_one_parent(tmp_path: Path, capsys) -> None:
    """Rules may repeat across subninjas; outputs and pools may not."""
    from tests.support.tools import ninja
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        manifest(tmp_path / name / f"{name}.json", [
            {"type": "image", "url": "http://127.0.0.1:9/base.tar"},
            {"type": "cmd", "copy": False, "path": "/bin/true"}])
        code, _, err = run(tmp_path, "--embed", name, "-f", f"{name}/image.ninja",
                           f"{name}/{name}.json", capsys=capsys)
        assert code == 0, err
    (tmp_path / "build.ninja").write_text(
        "ninja_required_version = 1.10\nsubninja one/image.ninja\nsubninja two/image.ninja\n")
    result = subprocess.run([ninja(), "-n", "one", "two"], cwd=tmp_path, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "one: pack one/one.aci" in result.stdout and "two: pack two/two.aci" in result.stdout


def test_subcommands_are_dispatched_before_manifests(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["gc", "--help"])
    assert exit_info.value.code == 0
    assert "acigen gc" in capsys.readouterr().out
    manifest(tmp_path / "gc", [{"type": "copy_host_files", "binaries": ["/bin/sh"]}])
    code, _, err = run(tmp_path, "./gc", capsys=capsys)
    assert code == 0, err  # a manifest named like a command
    assert (tmp_path / "build.ninja").exists()


def test_a_deep_local_directory_is_listed(tmp_path: Path, capsys) -> None:
    """copy_host_files of a 1,200-level directory: os.walk recursed past
    Python's limit; every file is still an input of the step."""
    (tmp_path / "base.tar").write_bytes(b"")
    deep = tmp_path / "deep"
    deep_tree(deep, 1200)
    try:
        manifest(tmp_path / "m.json", [{"type": "image", "path": "base.tar"},
                                       {"type": "copy_host_files", "files": [["deep", "/d"]]}])
        code, _out, err = run(tmp_path, "m.json", capsys=capsys)
        assert (code, err) == (0, "")
        assert "deep/" + "d/" * 1200 + "f" in (tmp_path / "build.ninja").read_text()
    finally:
        # pytest's own cleanup recurses: leave no deep tree; GNU rm, not treeremove,
        # which holds an fd per level and so needs more than an ordinary user's 1,024
        subprocess.run(["rm", "-rf", "--", str(deep)], check=True)
