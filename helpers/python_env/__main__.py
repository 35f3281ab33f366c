"""create_python_env: a small, working CPython at the image's /usr.

The host interpreter (python_exe, default: the Python running acigen; a
virtualenv's python stands for its base interpreter) is copied with what it
loads (found by the ELF resolver), its standard library and lib-dynload
(minus test suites and Tk), and pip (from a pip wheel on the host), to
/usr/bin/pythonX.Y, /usr/lib/pythonX.Y, ...; /usr/bin/python, python3, pip,
pip3 and pipX.Y name it.  Its prefix is found from the executable's place,
so a pyenv or /opt build works the same.  Modules are compiled once to
hash-based .pyc (reproducible).  A root user and group, /tmp and the host's
CA certificates are added where the image has none.  See docs/python.md.

By hand: acigen-python-env --root DIR [--python EXE] [--keep-tests] [--no-precompile]
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from acigen.errors import ExitCode, HelperError
from acigen.helpers.core.common import run_main
from acigen.helpers.layers.step import StepContext, step_main
from acigen.helpers.python_env import libs as python_libs
from acigen.helpers.python_env import pip_install as python_pip
from acigen.helpers.python_env import system as python_system
from acigen.helpers.python_env.compile import Source, compile_sources, pyc_path
from acigen.helpers.python_env.probe import IMAGE_PREFIX, PythonFacts, probe
from acigen.helpers.python_env.selection import Entry, dynload_entries, stdlib_entries
from acigen.helpers.python_env.tree import copy_entries
from acigen.helpers.rootfs.hostcopy import Copier
from acigen.helpers.rootfs.imagewrite import ImageWriter
from acigen.helpers.rootfs.root import Root

Say = Callable[[str], None]


@dataclass
class Options:
    python_exe: str | None = None  # None: the interpreter running acigen
    keep_tests: bool = False
    precompile: bool = True


@dataclass
class Outcome:
    summary: str
    read: list[str] = field(default_factory=list)  # host files read, for the depfile


def default_python() -> str:
    """The interpreter running acigen (a venv's python; probe() finds its base)."""
    return sys.executable


@dataclass
class Plan:
    """Everything decided and checked before anything is written."""

    facts: PythonFacts
    wheel: str
    stdlib: list[Entry]
    modules: list[Entry]
    libs: python_libs.HostLibs


def plan(options: Options) -> Plan:
    facts = probe(options.python_exe or default_python())
    wheel = python_pip.find_wheel(facts)
    stdlib = list(stdlib_entries(facts.stdlib, options.keep_tests, facts.version))
    modules = [m for m in dynload_entries(facts.dynload, options.keep_tests)
               if stat.S_ISREG(m.st.st_mode)]
    libs = python_libs.host_closure(facts, [m.host for m in modules])
    return Plan(facts, wheel, stdlib, [m for m in modules if m.host not in libs.broken], libs)


def create_python_env(root_dir: str, options: Options, say: Say = print) -> Outcome:
    """Install the Python into ROOT_DIR."""
    todo = plan(options)
    facts, libs = todo.facts, todo.libs
    with Root(root_dir) as root:
        writer = ImageWriter(root)
        before = _existing_python(writer, facts)
        read, replaced_libs = _copy_libraries(root, writer, facts, libs)
        python_system.link_commands(writer, facts)
        tree = copy_entries(writer, todo.stdlib, facts.stdlib, facts.image_stdlib, facts)
        dynload = copy_entries(writer, todo.modules, facts.dynload, facts.image_dynload, facts,
                               transform=_stripped_module)
        pip = python_pip.install(writer, todo.wheel, facts)
        # pip is left to compile itself when a later step runs it: its bytecode
        # would be 1.6 MB (xz) of every image, for a tool apps do not run
        pycs = _precompile(writer, facts, tree.sources, say) if options.precompile else set()
        python_pip.write_record(writer, pip)
        extras = _extras(writer, facts, read)
    warnings = python_libs.check_in_image(root_dir, facts.image_executable, dynload.files,
                                          libs.moved)
    _log(say, todo, replaced_libs, tree.skipped + dynload.skipped, warnings)
    read += [facts.requested, facts.executable, todo.wheel, *libs.moved, *tree.read,
             *dynload.read]
    summary = (f"Python {facts.full_version} from {facts.executable}: "
               f"{len(tree.files) + len(dynload.files)} files, pip {pip.version}, "
               f"{len(pycs)} modules compiled" + _changes(before, extras, replaced_libs))
    return Outcome(summary, read)


def _stripped_module(host: str, _data: bytes) -> bytes:
    return python_libs.stripped(host)[0]


def _existing_python(writer: ImageWriter, facts: PythonFacts) -> dict[str, str]:
    """The image's own python/pip commands and standard library, before we write."""
    names = [*python_system.command_names(facts), facts.image_executable]
    names += [f"{IMAGE_PREFIX}/bin/{n}" for n in ("pip", "pip3", f"pip{facts.short_version}")]
    found = {path: what for path in names if (what := writer.describe(path)) is not None}
    if writer.exists(facts.image_stdlib + "/os.py"):
        found[facts.image_stdlib] = "a standard library"
    return found


def _copy_libraries(root: Root, writer: ImageWriter, facts: PythonFacts,
                    libs: python_libs.HostLibs) -> tuple[list[str], list[str]]:
    """The loader and libraries at their host paths, libpython and the interpreter
    at /usr; returns the host files read and the image files replaced."""
    copier = Copier(root)
    for path in libs.copy:
        copier.copy(path, path)
    for host, image in [*libs.moved.items(), (facts.executable, facts.image_executable)]:
        data, _ = python_libs.stripped(host)
        writer.file(image, data, 0o755, os.stat(host).st_mtime_ns)
    return [p for p in libs.copy if os.path.isfile(p)], copier.replaced


def _precompile(writer: ImageWriter, facts: PythonFacts, sources: list[Source],
                say: Say) -> set[str]:
    """Write a .pyc for every source that compiles; returns the sources compiled."""
    compiled = compile_sources(facts.executable, sources)
    for path, data in sorted(compiled.pycs.items()):
        writer.file(pyc_path(path, facts.cache_tag), data, 0o644)
    for path, why in sorted(compiled.errors.items()):
        say(f"not compiled (importing it fails the same way): {path}: {why}")
    return set(compiled.pycs)


def _extras(writer: ImageWriter, facts: PythonFacts, read: list[str]) -> list[str]:
    made = python_system.identities(writer)
    if python_system.temp_dir(writer):
        made.append("/tmp")
    bundle = python_system.ca_certificates(writer, facts)
    if bundle:
        read.append(bundle)
        made.append(python_system.IMAGE_CA_BUNDLE)
    if python_system.pip_trusts_bundle(writer):
        made.append(python_system.PIP_CONF)
    return made


def _changes(before: dict[str, str], extras: list[str], replaced_libs: list[str]) -> str:
    parts = []
    if before:
        parts.append("replaced the image's " + ", ".join(
            f"{path} ({what})" for path, what in sorted(before.items())))
    if replaced_libs:
        parts.append(f"replaced {len(replaced_libs)} of the image's libraries with the host's")
    if extras:
        parts.append("added " + ", ".join(extras))
    return "".join(f"; {part}" for part in parts)


def _log(say: Say, todo: Plan, replaced_libs: list[str], skipped: list[str],
         warnings: list[str]) -> None:
    facts, libs = todo.facts, todo.libs
    say(f"python {facts.full_version}: {facts.executable} (prefix {facts.prefix}) -> "
        f"{facts.image_executable}, standard library {facts.stdlib} -> {facts.image_stdlib}")
    say(f"pip from {todo.wheel}, installed in {facts.image_purelib}")
    for host, image in sorted(libs.moved.items()):
        say(f"moved {host} -> {image}")
    for path in libs.copy:
        say(f"copied {path}")
    for path in replaced_libs:
        say(f"replaced the image's {path} with the host's")
    for module, why in sorted(libs.broken.items()):
        say(f"left out {module}: it cannot load on the host either: {why}")
    for line in [*skipped, *warnings, *libs.warnings]:
        say(line)


def step_action(ctx: StepContext) -> str:
    step = ctx.step
    options = Options(step.get("python_exe"), bool(step.get("keep_tests", False)),
                      bool(step.get("precompile", True)))
    outcome = create_python_env(ctx.root, options, ctx.say)
    ctx.inputs_read += outcome.read
    return outcome.summary


def by_hand(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="acigen-python-env",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", required=True, help="the image root to install into")
    parser.add_argument("--python", metavar="EXE", help="host interpreter to copy "
                        "(default: the one running this program)")
    parser.add_argument("--keep-tests", action="store_true",
                        help="keep the standard library's test suites")
    parser.add_argument("--no-precompile", dest="precompile", action="store_false",
                        help="do not compile modules to .pyc")
    parser.add_argument("--log", action="store_true", help="print the details too")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.root):
        raise HelperError(f"--root {args.root}: no such directory")
    say = (lambda line: print(line, file=sys.stderr)) if args.log else (lambda line: None)
    outcome = create_python_env(args.root, Options(args.python, args.keep_tests,
                                                   args.precompile), say)
    print(outcome.summary)
    return ExitCode.OK


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if "--step" in args:
        return step_main("acigen-python-env", step_action, args)
    return run_main("acigen-python-env", by_hand, args)


if __name__ == "__main__":
    raise SystemExit(main())
