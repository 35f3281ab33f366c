"""Build graph -> a Makefile (GNU make 4.3+) with the same edges as build.ninja.

Make has no command-line tracking and no restat: each stamp depends on its
spec file, which acigen rewrites only when it changes, and make re-stats a
target after its recipe, so an unchanged download stops there.  Recipes
name their paths explicitly (shell-quoted), never through `$@`/`$<`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from acigen import __version__
from acigen.escape import make_path, make_recipe, one_line, wrap
from acigen.plan import Edge, Graph
from acigen.render import OPTIONAL_INPUTS, Setup, sources
from acigen.rules import DEFER_SIGINT, HELPER_RULES, ISOLATED
from acigen.templating import environment

PYTHON = "$(ACIGEN_AT)$(ACIGEN_PYTHON)"


@dataclass
class MakeRule:
    head: str                          # `targets: prerequisites`, wrapped
    recipe: list[str] = field(default_factory=list)
    include: str | None = None         # a depfile the helper writes, -included


@dataclass
class MakeSection:
    comment: str
    rules: list[MakeRule] = field(default_factory=list)


def rule_head(targets: list[str], prerequisites: list[str], grouped: bool = False) -> str:
    outs = [make_path(t) for t in targets]
    outs[-1] += " &:" if grouped else ":"
    return wrap(outs[0], outs[1:] + [make_path(p) for p in prerequisites], cont=" \\")


def say(text: str) -> str:
    return "@printf '%s\\n' " + make_recipe([one_line(text)])


def helper_rule(edge: Edge) -> MakeRule:
    helper = HELPER_RULES[edge.rule]
    command = f"{PYTHON} {make_recipe(helper.arguments(edge.inputs[0], edge.outputs[0]))}"
    head = rule_head(list(edge.outputs), [*edge.inputs, *edge.implicit])
    include = make_path(edge.outputs[0] + ".d") if helper.depfile else None
    return MakeRule(head, [say(edge.description), command], include)


def acigen_command(setup: Setup) -> str:
    return f"{DEFER_SIGINT} $(ACIGEN_PYTHON) " + \
        make_recipe([*ISOLATED, "acigen", *setup.regen_args])


def sections(graph: Graph, setup: Setup) -> list[MakeSection]:
    out = []
    if not setup.embedded:
        out.append(MakeSection("the default goal: every image", [
            MakeRule(".PHONY: all"),
            MakeRule(rule_head(["all"], [p for i in graph.images for p in i.products]))]))
    out.append(MakeSection("a target whose recipe fails is deleted, as ninja does",
                           [MakeRule(".DELETE_ON_ERROR:")]))
    if graph.fetches:
        out.append(MakeSection("downloads", [helper_rule(e) for e in graph.fetches]))
    out.append(MakeSection("layers: one per step; its stamp is written last, when the "
                           "layer is complete", [helper_rule(e) for e in graph.layer_edges]))
    out.append(MakeSection("images", [helper_rule(e) for e in graph.image_edges]))
    aliases = [MakeRule(wrap(".PHONY:", [make_path(n) for n, _ in graph.aliases],
                             cont=" \\"))]
    aliases += [MakeRule(rule_head([name], list(targets))) for name, targets in graph.aliases]
    out.append(MakeSection("names to build by: an image, or an image up to one of its steps",
                           aliases))
    if graph.optional_inputs:
        out.append(MakeSection(OPTIONAL_INPUTS,
                               [MakeRule(rule_head([p], [])) for p in graph.optional_inputs]))
    out.append(regen_section(graph, setup))
    out.append(MakeSection("side files: recreated when one is missing", [MakeRule(
        rule_head(sorted(graph.files), [], grouped=True), [acigen_command(setup)])]))
    return out


def regen_section(graph: Graph, setup: Setup) -> MakeSection:
    if setup.embedded:
        return MakeSection(
            f"The parent Makefile's rule for {setup.build_file} runs acigen; these are\n# "
            "its inputs (make merges them into that rule)",
            [MakeRule(rule_head([setup.build_file], graph.regen_inputs))])
    assert setup.make_deps is not None
    regen = MakeRule(rule_head([setup.build_file], graph.regen_inputs),
                     [say(f"regenerating {setup.build_file}"), acigen_command(setup)])
    return MakeSection(
        "regeneration: make remakes this file when a manifest or acigen changes, then\n# "
        "starts again with the new one", [
            regen, MakeRule(f".PRECIOUS: {make_path(setup.build_file)}"),
            MakeRule(f"-include {make_path(setup.make_deps)}")])


def render_make(graph: Graph, setup: Setup) -> str:
    return environment().get_template("Makefile.j2").render(
        version=__version__, sources=one_line(sources(graph)), embedded=setup.embedded,
        build_file=make_path(setup.build_file), plural=len(graph.images) > 1,
        python=make_recipe([setup.python]), sections=sections(graph, setup))
