"""The build step types: their fields, checks, inputs and helpers.

Each step of `-aci-packer-build-steps-` becomes a `Step`: its definition
normalised (defaults filled in, local paths made relative to the ninja
file's directory), the local files it reads (ninja inputs of its edge), and
the helper module that runs it.  `setup_chroot` makes no layer: it changes
the chroot settings of the steps after it.
"""

from __future__ import annotations

import os
import re
import shlex
import stat
from collections.abc import Callable
from dataclasses import dataclass, field

from acigen.jsoncheck import Node, type_name
from acigen.rules import STEP_KINDS, StepKind
from acigen.specs import CHROOT_DEFAULTS, CHROOT_KEYS

TYPE_CHECKING = False  # typing costs ~2 ms to import, at every regeneration
if TYPE_CHECKING:
    from typing import Any

NETWORKS = ("host", "none")  # a chroot step's network: the host's, or only loopback
HEX = re.compile(r"^[0-9a-f]+$")
URL_SCHEMES = ("http://", "https://", "file://")


@dataclass(frozen=True)
class Step:
    index: int                       # 1-based position in the manifest
    type: str
    definition: dict[str, Any]       # normalised; what the helper reads
    summary: str                     # a short human description
    inputs: tuple[str, ...] = ()     # local files read (relative to the ninja dir)
    scanned_dirs: tuple[str, ...] = ()  # directories listed to find inputs
    url: str | None = None           # a download this step needs

    @property
    def kind(self) -> StepKind:
        return STEP_KINDS[self.type]

    @property
    def helper(self) -> str | None:
        """Its helper module in acigen.helpers; None: no layer (setup_chroot)."""
        return self.kind.rule.module if self.kind.rule else None


@dataclass
class Context:
    """What parsing a step needs to know about its surroundings."""

    manifest_dir: str               # absolute
    ninja_dir: str                  # absolute
    app: dict[str, Any] | None
    check_files: bool = True        # False when embedded: a parent may build them
    platform: tuple[str | None, ...] = ("linux", "amd64", None)  # OCI os/arch/variant
    chroot: dict[str, bool] = field(default_factory=lambda: dict(CHROOT_DEFAULTS))

    def local_path(self, node: Node, kind: str = "file") -> str:
        """A host path from the manifest, relative to the ninja dir."""
        value = node.string(non_empty=True)
        path = os.path.normpath(os.path.join(self.manifest_dir, value))
        if self.check_files:
            exists = os.path.isdir(path) if kind == "dir" else os.path.exists(path)
            if not exists:
                # an absolute path is shown as given; a relative one as found from here
                shown = path if os.path.isabs(value) else os.path.relpath(path)
                where = "" if shown == value else f" (looked at {shown})"
                raise node.error(f"{value!r}: no such {kind}{where}")
        if os.path.isabs(value):
            return path
        return os.path.relpath(path, self.ninja_dir)

    def absolute(self, relative: str) -> str:
        return os.path.normpath(os.path.join(self.ninja_dir, relative))


def image_path(node: Node) -> str:
    """A path inside the image: absolute, without `..`."""
    value = node.string(non_empty=True)
    if not value.startswith("/"):
        raise node.error(f"{value!r} is not an absolute path in the image")
    if ".." in value.split("/"):
        raise node.error(f"{value!r} contains '..'")
    if "\0" in value:
        raise node.error("a path may not contain a NUL character")
    return value


def _bools(fields: dict[str, Node], keys: tuple[str, ...]) -> dict[str, bool]:
    return {key: fields[key].boolean() for key in keys if key in fields}


def _shown(word: str) -> str:
    """WORD as a shell would read it back, and as a person reads it: a word
    holding a single quote (and nothing a shell expands in double quotes) is
    double-quoted, not spelled '"'"' as shlex.quote spells it."""
    if not word:
        return "''"
    if "'" in word and not any(c in word for c in '"$`\\!'):
        return f'"{word}"'
    return shlex.quote(word)


def _short(words: list[str], limit: int = 60) -> str:
    text = " ".join(_shown(w) for w in words)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- one parser per step type -------------------------------------------------

def parse_image(node: Node, ctx: Context, index: int) -> Step:
    fields = node.obj(required=("type",), optional=("path", "url", "oci", "sha256", "sha512",
                                                    "devices", "max_size"))
    if sum(key in fields for key in ("path", "url", "oci")) != 1:
        raise node.error("an image step needs exactly one of 'path', 'url' and 'oci'")
    definition: dict[str, Any] = {"type": "image", "devices": _devices(fields)}
    if "max_size" in fields:  # bytes, uncompressed: a bound on decompression bombs
        definition["max_size"] = fields["max_size"].integer(low=1)
    if "oci" in fields:  # an OCI image: acigen/ocistep.py
        from acigen.ocistep import parse_oci
        return parse_oci(node, fields, ctx, index, definition)
    for algo, length in (("sha256", 64), ("sha512", 128)):
        if algo in fields:
            digest = fields[algo].string().lower()
            if len(digest) != length or not HEX.fullmatch(digest):
                raise fields[algo].error(f"expected {length} hexadecimal digits")
            definition[algo] = digest
    if "path" in fields:
        path = ctx.local_path(fields["path"])
        definition["path"] = path
        return Step(index, "image", definition, f"unpack {fields['path'].value}",
                    inputs=(path,))
    url = fields["url"].string(non_empty=True)
    if not url.startswith(URL_SCHEMES):
        raise fields["url"].error(f"{url!r}: only http, https and file URLs are supported")
    definition["url"] = url
    return Step(index, "image", definition, f"unpack {url}", url=url)


def _devices(fields: dict[str, Node]) -> bool | str:
    """What to do with the archive's device nodes: "skip" (the default: leave
    them out; an appc executor provides /dev, and a rootfs tarball like the
    original's nginx base holds nodes no image should carry), true (keep
    them) or false (an error)."""
    if "devices" not in fields:
        return "skip"
    value = fields["devices"].value
    if value == "skip" or isinstance(value, bool):
        return value  # type: ignore[no-any-return]
    raise fields["devices"].error(f'expected true, false or "skip", got {value!r}')


def parse_setup_chroot(node: Node, ctx: Context, index: int) -> Step:
    fields = node.obj(required=("type",), optional=CHROOT_KEYS)
    ctx.chroot = {**CHROOT_DEFAULTS, **_bools(fields, CHROOT_KEYS)}
    return Step(index, "setup_chroot", {"type": "setup_chroot", **ctx.chroot},
                "chroot settings")


def _network(fields: dict[str, Node]) -> dict[str, str]:
    """A chroot step's network: the host's (left out of the definition, so
    the layer keys of steps that never say stay as they were) or "none"."""
    if "network" not in fields:
        return {}
    value = fields["network"].string()
    if value not in NETWORKS:
        raise fields["network"].error(f'expected "host" or "none", got {value!r}')
    return {} if value == "host" else {"network": value}


def parse_cmd(node: Node, ctx: Context, index: int) -> Step:
    fields = node.obj(required=("type", "path"),
                      optional=("args", "copy", "env", "workdir", "network"))
    copy = fields["copy"].boolean() if "copy" in fields else True
    args = fields["args"].strings() if "args" in fields else []
    env = fields["env"].mapping() if "env" in fields else {}
    for name, value in env.items():
        if "\0" in name or "=" in name or not name or "\0" in value:
            raise fields["env"].child(name).error(f"{name!r} is not a valid variable")
    workdir = image_path(fields["workdir"]) if "workdir" in fields else "/"
    inputs: tuple[str, ...] = ()
    if copy:
        path = ctx.local_path(fields["path"])
        inputs = (path,)
    else:
        path = image_path(fields["path"])
    definition = {"type": "cmd", "path": path, "args": args, "copy": copy, "env": env,
                  "workdir": workdir, "chroot": dict(ctx.chroot), **_network(fields)}
    shown = os.path.basename(path) if copy else path.rsplit("/", 1)[-1]
    return Step(index, "cmd", definition, _short([shown, *args]),
                inputs=inputs)


def parse_ansible(node: Node, ctx: Context, index: int) -> Step:
    fields = node.obj(required=("type", "playbook"), optional=(*CHROOT_KEYS, "network"))
    _require_ansible(node)
    playbook = ctx.local_path(fields["playbook"])
    chroot = {**ctx.chroot, **_bools(fields, CHROOT_KEYS)}
    inputs, dirs = _tree_files(ctx.absolute(os.path.dirname(playbook) or "."), ctx)
    definition = {"type": "ansible", "playbook": playbook, "chroot": chroot,
                  **_network(fields)}
    return Step(index, "ansible", definition,
                f"ansible-playbook {fields['playbook'].value}",
                inputs=tuple(sorted({playbook, *inputs})), scanned_dirs=dirs)


# the parts of the app section the extract helper reads (PATH, user names);
# only these, so editing ports or annotations does not rerun the step
EXTRACT_APP_KEYS = ("exec", "user", "group", "environment", "workingDirectory")


def _require_ansible(node: Node) -> None:
    """Ansible is an optional extra: say so now, not with a traceback at build time."""
    from acigen.errors import HelperError
    from acigen.hostprograms import find_ansible_playbook

    try:
        find_ansible_playbook()
    except HelperError as exc:
        raise node.child("type").error(f"{exc}; the ansible step needs it", exc.hint) from None


def parse_extract(node: Node, ctx: Context, index: int) -> Step:
    fields = node.obj(required=("type",), optional=("binaries", "keeps", "allow_missing"))
    if "binaries" in fields:
        binaries = [image_path(item) for item in fields["binaries"].items()]
    else:
        binaries = _default_binary(node, ctx)
    keeps = [image_path(item) for item in fields["keeps"].items()] if "keeps" in fields else []
    allow = []
    for item in fields["allow_missing"].items() if "allow_missing" in fields else []:
        name = item.string(non_empty=True)
        if "/" in name:
            raise item.error(f"{name!r}: name a library (e.g. libfoo.so.1), not a path")
        allow.append(name)
    app = {k: v for k, v in (ctx.app or {}).items() if k in EXTRACT_APP_KEYS}
    definition = {"type": "extract", "binaries": binaries, "keeps": keeps,
                  "allow_missing": allow, "app": app}
    return Step(index, "extract", definition, _short(["keep", *binaries]))


def _default_binary(node: Node, ctx: Context) -> list[str]:
    exec_args = (ctx.app or {}).get("exec") or []
    if not exec_args:
        raise node.error("extract needs 'binaries' when the manifest has no app.exec")
    return [exec_args[0]]  # resolved through the image's PATH by the helper


def parse_python_env(node: Node, ctx: Context, index: int) -> Step:
    fields = node.obj(required=("type",), optional=("python_exe", "keep_tests", "precompile"))
    definition: dict[str, Any] = {"type": "create_python_env", "python_exe": None,
                                  "keep_tests": False, "precompile": True}
    inputs: tuple[str, ...] = ()
    if "python_exe" in fields:
        exe = fields["python_exe"].string(non_empty=True)
        if not os.path.isabs(exe):
            raise fields["python_exe"].error(f"{exe!r} is not an absolute path on the host")
        if ctx.check_files and not os.path.exists(exe):
            raise fields["python_exe"].error(f"{exe!r}: no such file")
        definition["python_exe"] = exe
        inputs = (exe,)
    definition.update(_bools(fields, ("keep_tests", "precompile")))
    return Step(index, "create_python_env", definition,
                f"python from {definition['python_exe'] or 'the host'}", inputs=inputs)


def parse_copy_host_files(node: Node, ctx: Context, index: int) -> Step:
    fields = node.obj(required=("type",), optional=("binaries", "files"))
    binaries = []
    for item in fields["binaries"].items() if "binaries" in fields else []:
        if not str(item.value).startswith("/"):
            raise item.error(f"{item.value!r} is not an absolute host path")
        binaries.append(ctx.local_path(item))
    files, inputs, dirs = [], list(binaries), []
    for pair in fields["files"].items() if "files" in fields else []:
        src, dst = _file_pair(pair, ctx)
        files.append([src, dst])
        found, scanned = _tree_files(ctx.absolute(src), ctx)
        inputs += found or [src]
        dirs += scanned
    if not binaries and not files:
        raise node.error("copy_host_files needs 'binaries' or 'files'")
    definition = {"type": "copy_host_files", "binaries": binaries, "files": files}
    words = [os.path.basename(b) for b in binaries] + [dst for _src, dst in files]
    return Step(index, "copy_host_files", definition, _short(words),
                inputs=tuple(sorted(set(inputs))), scanned_dirs=tuple(sorted(set(dirs))))


def _file_pair(pair: Node, ctx: Context) -> tuple[str, str]:
    items = list(pair.items())
    if len(items) != 2:
        raise pair.error("expected a [host path, image path] pair")
    return ctx.local_path(items[0]), image_path(items[1])


def _tree_files(path: str, ctx: Context) -> tuple[list[str], tuple[str, ...]]:
    """Files under directory PATH (relative to the ninja dir) and the
    directories listed; ([], ()) if PATH is not a directory."""
    if not os.path.isdir(path) or os.path.islink(path):
        return [], ()
    from acigen.treewalk import iter_tree  # iterative: os.walk recurses (3.11)
    names: dict[str, list[str]] = {"": []}  # directory -> its files, as os.walk orders them
    for rel, st in iter_tree(path):
        if stat.S_ISDIR(st.st_mode):
            names[rel] = []
        elif not (stat.S_ISLNK(st.st_mode) and os.path.isdir(os.path.join(path, rel))):
            names[os.path.dirname(rel)].append(rel)  # a link to a directory is neither

    def local(rel: str) -> str:
        return os.path.relpath(os.path.join(path, rel) if rel else path, ctx.ninja_dir)
    files = [local(rel) for found in names.values() for rel in found]
    return files, tuple(local(rel) for rel in names)


PARSERS: dict[str, Callable[[Node, Context, int], Step]] = {
    "image": parse_image,
    "setup_chroot": parse_setup_chroot,
    "cmd": parse_cmd,
    "ansible": parse_ansible,
    "extract": parse_extract,
    "create_python_env": parse_python_env,
    "copy_host_files": parse_copy_host_files,
}


def parse_step(node: Node, ctx: Context, index: int) -> Step:
    if not isinstance(node.value, dict):
        raise node.error(f"expected a step object, got {type_name(node.value)}")
    if "type" not in node.value:
        raise node.error("missing required key 'type'",
                         "known types: " + ", ".join(PARSERS))
    kind = node.child("type").string()
    if kind not in PARSERS:
        raise node.child("type").error(f"unknown step type {kind!r}",
                                       "known types: " + ", ".join(PARSERS))
    return PARSERS[kind](node, ctx, index)
