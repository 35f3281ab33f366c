"""Build graph -> text, through the jinja2 templates (layout only).

Everything is escaped here, in Python; the templates only lay out an
already-escaped view model.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import jinja2

from acigen import __version__, templates
from acigen.escape import ninja_path, ninja_value, one_line, shell_words, wrap
from acigen.plan import Edge, Graph


@dataclass(frozen=True)
class Setup:
    """What the header of a generated file needs."""

    python: str                       # interpreter that runs the helpers
    regen_args: list[str]             # acigen's arguments, relative to the ninja dir
    ninja_file: str                   # its name, relative to its directory
    builddir: str
    stamp: str                        # regeneration stamp
    fetch_jobs: int = 4
    embed_prefix: str | None = None


@dataclass
class EdgeView:
    build: str
    variables: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Section:
    comment: str
    edges: list[EdgeView] = field(default_factory=list)


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(os.path.dirname(templates.__file__)),
        undefined=jinja2.StrictUndefined, autoescape=False, trim_blocks=True,
        lstrip_blocks=True, keep_trailing_newline=True)


def build_line(edge: Edge) -> str:
    outs = [ninja_path(p) for p in edge.outputs]
    if edge.implicit_outputs:
        outs += ["|"] + [ninja_path(p) for p in edge.implicit_outputs]
    tokens = [ninja_path(p) for p in edge.inputs]
    if edge.implicit:
        tokens += ["|"] + [ninja_path(p) for p in edge.implicit]
    outs[-1] += ":"
    return wrap("build", [*outs, edge.rule, *tokens])


def edge_view(edge: Edge) -> EdgeView:
    variables = [("desc", ninja_value(one_line(edge.description)))] if edge.description else []
    return EdgeView(build_line(edge), variables)


def sections(graph: Graph, setup: Setup) -> list[Section]:
    out = []
    if graph.fetches:
        out.append(Section("downloads: independent of the step chains, so all start at once",
                           [edge_view(e) for e in graph.fetches]))
    out.append(Section("layers: one per step; its stamp is written last, when the layer is "
                       "complete", [edge_view(e) for e in graph.layer_edges]))
    images = Section("images")
    for image, edge in zip(graph.images, graph.image_edges, strict=True):
        images.edges.append(edge_view(edge))
        images.edges.append(EdgeView(f"build {ninja_path(image.name)}: phony "
                                     f"{ninja_path(image.output)}"))
    out.append(images)
    regen = regen_edge(graph, setup)
    out.append(Section(
        "regeneration: acigen runs again when a manifest or acigen changes.\n# Its "
        "output is a stamp, so that Ctrl-C during regeneration cannot delete "
        f"{setup.ninja_file}.", [edge_view(regen),
                                EdgeView(f"build {ninja_path(setup.ninja_file)}: phony "
                                         f"{ninja_path(setup.stamp)}",
                                         [("generator", "1")])]))
    return out


def regen_edge(graph: Graph, setup: Setup) -> Edge:
    return Edge("acigen_regen", (setup.stamp,), tuple(graph.regen_inputs),
                implicit_outputs=tuple(sorted(graph.files)))


def rules_used(graph: Graph) -> set[str]:
    edges = graph.fetches + graph.layer_edges + graph.image_edges
    return {e.rule for e in edges} | {"acigen_regen"}


def render_ninja(graph: Graph, setup: Setup) -> str:
    variables = [("builddir", ninja_path(setup.builddir)),
                 ("acigen_python", ninja_value(setup.python)),
                 ("acigen_args", shell_words(setup.regen_args))]
    sources = ", ".join(image.manifest for image in graph.images)
    return _environment().get_template("build.ninja.j2").render(
        version=__version__, sources=sources, plural=len(graph.images) > 1,
        prefix_note=None, variables=variables, fetch_jobs=setup.fetch_jobs,
        rules=rules_used(graph), ninja_file=setup.ninja_file,
        sections=sections(graph, setup),
        defaults=" ".join(ninja_path(i.output) for i in graph.images))
