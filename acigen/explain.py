"""`acigen --explain`: which steps the next build reruns, and why, in plain words.

It asks ninja itself (`ninja -n -d explain`: a dry run that says why each
edge is dirty) and translates each answer using the build graph: ninja
speaks of stamps and mtimes, people of steps and files.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

from acigen.errors import AcigenError, ExitCode
from acigen.escape import ninja_path, one_line
from acigen.plan import Edge, Graph
from acigen.rules import FETCH, HELPER_RULES, PACK

MARK = "acigen-explain> "   # NINJA_STATUS: marks the lines naming an edge
PATTERNS = [
    ("missing", re.compile(r"^output (.+) doesn't exist$")),
    ("older", re.compile(r"^output (.+) older than most recent input (.+) \(-?\d+ vs -?\d+\)$")),
    ("older", re.compile(r"^recorded mtime of (.+) older than most recent input (.+) "
                         r"\(-?\d+ vs -?\d+\)$")),
    ("command", re.compile(r"^command line changed for (.+)$")),
    ("deps", re.compile(r"^deps for '(.+)' are missing$")),
    ("deps", re.compile(r"^depfile '(.+)\.d' is missing$")),
    ("no-input", re.compile(r"^(.+) has no in-edge and is missing$")),
    ("dirty", re.compile(r"^(.+) is dirty$")),
]


def ninja_binary() -> str:
    """$ACIGEN_NINJA, else the ninja of acigen's PyPI dependency: use the
    same ninja for building, since ninja versions do not share logs."""
    if os.environ.get("ACIGEN_NINJA"):
        return os.environ["ACIGEN_NINJA"]
    import ninja as ninja_pkg
    return os.path.join(ninja_pkg.BIN_DIR, "ninja")


@dataclass
class DryRun:
    runs: list[Edge] = field(default_factory=list)        # in ninja's order
    others: list[str] = field(default_factory=list)       # edges not in the graph
    said: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)  # out -> why
    notes: list[str] = field(default_factory=list)        # ninja's warnings


def ask_ninja(build_file: str) -> list[str]:
    """Ninja's dry run with explanations, one line each.

    Ninja is given a top-level file that only includes BUILD_FILE: nothing
    builds that one, so ninja does not first rerun acigen (which has just
    run) the way a dry run of BUILD_FILE itself may, and then stop there.
    """
    env = dict(os.environ, NINJA_STATUS=MARK)
    with tempfile.TemporaryDirectory(prefix="acigen-explain-") as tmp:
        top = os.path.join(tmp, "explain.ninja")
        with open(top, "w", encoding="utf-8") as out:
            out.write(f"include {ninja_path(os.path.abspath(build_file))}\n")
        result = subprocess.run(
            [ninja_binary(), "-f", top, "-n", "-d", "explain"],
            cwd=os.path.dirname(build_file), env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, errors="replace")
    lines = result.stdout.splitlines()
    if result.returncode != 0:
        last = next((line for line in reversed(lines) if line.strip()), "no output")
        raise AcigenError(f"ninja -n failed: {last}")
    return lines


def classify(message: str) -> tuple[str, str, str]:
    """(kind, subject, other) of one `ninja explain:` message."""
    for kind, pattern in PATTERNS:
        match = pattern.match(message)
        if match:
            groups = match.groups()
            return kind, groups[0], groups[1] if len(groups) > 1 else ""
    return "other", "", message


def parse(lines: list[str], graph: Graph) -> DryRun:
    """Which edges ninja would run, and what it said about each: a message
    naming an edge's output belongs to that edge; any other (`X is dirty`)
    to the edge whose line follows it (ninja 1.12+ prints each edge's
    explanations just before it)."""
    by_description = {one_line(e.description): e for e in graph.stamp_edges().values()}
    outputs = graph.stamp_edges()
    dry, pending = DryRun(), []
    for line in lines:
        if line.startswith("ninja explain: "):
            why = classify(line[len("ninja explain: "):])
            if why[0] in ("missing", "older", "command", "deps") and why[1] in outputs:
                dry.said.setdefault(why[1], []).append(why)
            else:
                pending.append(why)
        elif line.startswith(MARK):
            description = line[len(MARK):].strip()
            edge = by_description.get(description)
            if edge is not None:
                dry.runs.append(edge)
                dry.said.setdefault(edge.outputs[0], []).extend(pending)
            else:  # e.g. recreating missing side files
                dry.others.append(description)
            pending = []
        elif line.startswith("ninja: warning:"):
            dry.notes.append(line)
    return dry


class Words:
    """Ninja's reasons in a person's words, for one graph."""

    def __init__(self, graph: Graph, base_dir: str) -> None:
        self.base_dir = base_dir
        self.edges = graph.stamp_edges()
        self.urls = {ref: url for url, ref in graph.downloads.items()}
        self.steps = {layer.stamp: f"step {layer.step.index} ({layer.step.type})"
                      for layer in graph.layers}
        self.locks = {lock for edge in graph.fetches for lock in edge.implicit}

    def what(self, path: str) -> str:
        if path in self.steps:
            return self.steps[path]
        if path in self.urls:
            return f"the download of {self.urls[path]}"
        return path

    def reason(self, edge: Edge, why: tuple[str, str, str]) -> str:
        kind, subject, other = why
        if kind == "missing":
            return self.never_built(edge)
        if kind == "older":
            return self.newer_input(edge, other)
        if kind == "command":
            return "its command line changed (another acigen or Python: acigen_python)"
        if kind == "deps":
            if not os.path.exists(os.path.join(self.base_dir, edge.outputs[0])):
                return self.never_built(edge)
            return "ninja has no list yet of the host files it read"
        if kind == "no-input":
            return f"input {subject} is missing: the build would stop here"
        if kind == "dirty" and subject in self.locks:
            return f"{subject} does not exist yet (the download's digest is recorded there)"
        if kind == "dirty":
            return f"{self.what(subject)} reruns first"
        return other

    def never_built(self, edge: Edge) -> str:
        if HELPER_RULES.get(edge.rule) is FETCH:
            return "not fetched for this build directory yet"
        if HELPER_RULES.get(edge.rule) is PACK:
            return f"{edge.outputs[0]} does not exist yet"
        return ("never built as now defined: the step is new or was edited, or one "
                "before it was (or its layer was removed)")

    def newer_input(self, edge: Edge, path: str) -> str:
        if path in self.steps:
            return f"{self.steps[path]} below it was rebuilt since"
        if path in self.urls:
            return f"the download of {self.urls[path]} changed"
        if path == edge.inputs[0]:
            if HELPER_RULES.get(edge.rule) is PACK:
                return "the image's manifest or packing options changed"
            return "acigen's settings for it changed (e.g. --layer-mode)"
        return f"{path} changed since it last ran"

    def follows(self, edge: Edge, running: set[str]) -> str | None:
        for path in edge.implicit:
            if path in running:
                return f"{self.what(path)} reruns first"
        return None


def report(graph: Graph, dry: DryRun, base_dir: str) -> list[str]:
    words = Words(graph, base_dir)
    running = {edge.outputs[0] for edge in dry.runs}
    total = len(graph.stamp_edges())
    if not dry.runs:
        return [f"acigen: nothing to rebuild: all {total} steps, downloads and images "
                "are up to date", *(f"  (and: {other})" for other in dry.others)]
    out = [f"acigen: the next build runs {len(dry.runs)} of {total} steps, downloads "
           "and images:"]
    for edge in dry.runs:
        said = [words.reason(edge, why) for why in dry.said.get(edge.outputs[0], [])
                if why[0] != "dirty"]
        if not said and not os.path.exists(os.path.join(base_dir, edge.outputs[0])):
            said = [words.never_built(edge)]
        if not said:
            follows = words.follows(edge, running)
            said = [follows] if follows else [words.reason(edge, why) for why in
                                              dry.said.get(edge.outputs[0], [])]
        out.append(f"  {one_line(edge.description)}")
        out += [f"      because {text}" for text in dict.fromkeys(said)] or \
            ["      because ninja says so (no reason given)"]
    return out + [f"  (and: {other})" for other in dry.others] + dry.notes


def explain(graph: Graph, build_file: str) -> int:
    lines = ask_ninja(build_file)
    for line in report(graph, parse(lines, graph), os.path.dirname(build_file)):
        print(line)
    sys.stdout.flush()
    return ExitCode.OK
