"""Build graph -> build.ninja (laid out by ninja_text.py).

Everything is escaped here, in Python; ninja_text.py and the templates only
lay out an already-escaped view model.  The Makefile and dot renderers
(render_make.py, render_dot.py) share this module's Setup and, through
templating.py, jinja2 (imported only for them: see ninja_text.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from acigen import __version__
from acigen.escape import ninja_path, ninja_value, one_line, shell_words, wrap
from acigen.ninja_text import NinjaText, layout
from acigen.plan import Edge, Graph
from acigen.rules import DEFER_SIGINT, HELPER_RULES, ISOLATED

OPTIONAL_INPUTS = ("inputs that may be missing: the manifests, the directories acigen lists, a "
                   "lock file\n# the first download writes; a missing one reruns acigen "
                   "(which says what is wrong)\n# instead of stopping the build")


@dataclass(frozen=True)
class Setup:
    """What the generated file needs besides the graph."""

    python: str                       # interpreter that runs the helpers
    regen_args: list[str]             # acigen's arguments, relative to the base dir
    build_file: str                   # the generated file, relative to the base dir
    builddir: str
    stamp: str | None = None          # ninja's regeneration stamp (not when embedded)
    fetch_jobs: int = 4
    embed_prefix: str | None = None   # set: a file for `subninja`/`include`
    fetch_pool: str = "acigen_fetch"  # pools are global in ninja: unique when embedded
    make_deps: str | None = None      # make: the depfile listing acigen's own sources

    @property
    def embedded(self) -> bool:
        return self.embed_prefix is not None

    @property
    def own_files(self) -> list[str]:
        """Files in the build dir that belong to the generated file itself."""
        files = [self.stamp, self.stamp + ".d"] if self.stamp else []
        return files + ([self.make_deps] if self.make_deps else [])

    @property
    def inputs_alias(self) -> str:
        """Embedded: the target a parent's regeneration rule depends on."""
        return self.build_file + ".inputs"


@dataclass
class EdgeView:
    build: str
    variables: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Section:
    comment: str
    edges: list[EdgeView] = field(default_factory=list)


def sources(graph: Graph) -> str:
    return ", ".join(image.manifest for image in graph.images)


def build_line(edge: Edge) -> str:
    outs = [ninja_path(p) for p in edge.outputs]
    if edge.implicit_outputs:
        outs += ["|"] + [ninja_path(p) for p in edge.implicit_outputs]
    tokens = [ninja_path(p) for p in edge.inputs]
    if edge.implicit:
        tokens += ["|"] + [ninja_path(p) for p in edge.implicit]
    outs[-1] += ":"
    return wrap("build", [*outs, edge.rule, *tokens])


def edge_view(edge: Edge, *extra: tuple[str, str]) -> EdgeView:
    variables = [("desc", ninja_value(one_line(edge.description)))] if edge.description else []
    return EdgeView(build_line(edge), variables + list(extra))


def phony(name: str, targets: list[str]) -> EdgeView:
    return EdgeView(wrap("build", [ninja_path(name) + ":", "phony",
                                   *(ninja_path(t) for t in targets)]))


def sections(graph: Graph, setup: Setup) -> list[Section]:
    out = []
    if graph.fetches:
        out.append(Section("downloads: independent of the step chains, so all start at once",
                           [edge_view(e) for e in graph.fetches]))
    out.append(Section("layers: one per step; its stamp is written last, when the layer is "
                       "complete", [edge_view(e) for e in graph.layer_edges]))
    out.append(Section("images", [edge_view(e) for e in graph.image_edges]))
    out.append(Section("names to build by: an image, or an image up to one of its steps",
                       [phony(name, list(targets)) for name, targets in graph.aliases]))
    if graph.optional_inputs:
        out.append(Section(OPTIONAL_INPUTS, [phony(path, []) for path in graph.optional_inputs]))
    out.append(embed_section(graph, setup) if setup.embedded else regen_section(graph, setup))
    return out


def side_files_edge(graph: Graph) -> EdgeView:
    """The side files are outputs of an edge without inputs: it runs only
    when one is missing.  (As implicit outputs of the regeneration edge, any
    not rewritten after a manifest edit would look out of date to ninja.)"""
    return edge_view(Edge("acigen_side_files", tuple(sorted(graph.files))))


def regen_section(graph: Graph, setup: Setup) -> Section:
    assert setup.stamp is not None
    regen = Edge("acigen_regen", (setup.stamp,), tuple(graph.regen_inputs))
    return Section(
        "regeneration: acigen runs again when a manifest or acigen changes.\n# Its "
        "output is a stamp, so that Ctrl-C during regeneration cannot delete "
        f"{setup.build_file};\n# the side files are recreated only when one is missing.",
        [edge_view(regen), EdgeView(f"build {ninja_path(setup.build_file)}: phony "
                                    f"{ninja_path(setup.stamp)}", [("generator", "1")]),
         side_files_edge(graph)])


def embed_section(graph: Graph, setup: Setup) -> Section:
    return Section(
        f"The parent build regenerates {setup.build_file}, and touches its own build.ninja\n# "
        f"so that ninja reloads; that rule depends on {setup.inputs_alias}.\n# "
        "The side files are recreated only when one is missing.",
        [phony(setup.inputs_alias, graph.regen_inputs), side_files_edge(graph)])


def rules_used(graph: Graph, setup: Setup) -> set[str]:
    edges = graph.fetches + graph.layer_edges + graph.image_edges
    return {e.rule for e in edges} | {"acigen_side_files"} | \
        (set() if setup.embedded else {"acigen_regen"})


@dataclass(frozen=True)
class RuleView:
    name: str
    command: str
    depfile: bool
    fetch: bool
    console: bool


def helper_rules(used: set[str]) -> list[RuleView]:
    return [RuleView(rule.name, " ".join(rule.arguments("$in", "$out")), rule.depfile,
                     rule.fetch, rule.console)
            for rule in HELPER_RULES.values() if rule.name in used]


def render_ninja(graph: Graph, setup: Setup) -> str:
    variables = [] if setup.embedded else [("builddir", ninja_path(setup.builddir))]
    variables += [("acigen_python", shell_words([setup.python])),
                  ("acigen_args", shell_words(setup.regen_args))]
    used = rules_used(graph, setup)
    return layout(NinjaText(
        version=__version__, sources=ninja_value(sources(graph)),
        plural=len(graph.images) > 1, embedded=setup.embedded,
        build_file=ninja_value(setup.build_file),
        embed_prefix=ninja_value(setup.embed_prefix or ""), fetch_pool=setup.fetch_pool,
        fetch_jobs=setup.fetch_jobs, variables=variables, rules=used,
        acigen_module=" ".join([*ISOLATED, "acigen"]), defer_sigint=DEFER_SIGINT,
        helper_rules=helper_rules(used),
        sections=sections(graph, setup),
        defaults=" ".join(ninja_path(p) for i in graph.images for p in i.products)))
