"""Build graph -> Graphviz dot: downloads, input files, layers and images.

Node ids come from names (URL, path, layer name, image name), never from
memory, so the same manifests always give the same text.  A layer shared by
several images is one node.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from acigen import __version__
from acigen.escape import dot_string, one_line
from acigen.plan import Graph, Layer
from acigen.render import sources
from acigen.templating import environment


@dataclass
class Node:
    id: str                            # already a quoted dot string
    attributes: str


@dataclass
class Group:
    comment: str
    nodes: list[Node] = field(default_factory=list)


def _id(kind: str, name: str) -> str:
    return dot_string(f"{kind}:{name}")


def layer_node(layer: Layer, users: list[str]) -> Node:
    step = layer.step
    label = dot_string(f"step {step.index} {step.type}", step.summary,
                       f"{', '.join(users)} \u00b7 {layer.name}")
    return Node(_id("layer", layer.name), f"label={label}, shape=box, style=rounded")


def layer_users(graph: Graph) -> dict[str, list[str]]:
    users: dict[str, list[str]] = {layer.name: [] for layer in graph.layers}
    for image in graph.images:
        layer: Layer | None = image.top
        while layer is not None:
            users[layer.name].append(image.name)
            layer = layer.parent
    return users


def nodes(graph: Graph) -> list[Group]:
    files = sorted({path for layer in graph.layers for path in layer.step.inputs})
    users = layer_users(graph)
    groups = [
        Group("input files: editing one reruns the steps that read it, and those after",
                [Node(_id("file", p), f"label={dot_string(p)}, shape=note") for p in files]),
        Group("downloads", [Node(_id("fetch", url), f"label={dot_string('fetch', url)}, "
                                   "shape=cylinder") for url in graph.downloads]),
        Group("layers: one per step, named by a hash of the step and every step below it",
                [layer_node(layer, users[layer.name]) for layer in graph.layers]),
        Group("images", [Node(_id("image", image.name),
                                f"label={dot_string(image.name, image.output)}, "
                                "shape=box3d, style=filled, fillcolor=\"#e8f0fe\"")
                           for image in graph.images]),
    ]
    return [group for group in groups if group.nodes]


def arrows(graph: Graph) -> list[str]:
    out = []
    for layer in graph.layers:
        to = _id("layer", layer.name)
        if layer.parent is not None:
            out.append(f"{_id('layer', layer.parent.name)} -> {to};")
        if layer.step.url:
            out.append(f"{_id('fetch', layer.step.url)} -> {to};")
        out += [f"{_id('file', path)} -> {to} [style=dashed];"
                for path in sorted(set(layer.step.inputs))]
    out += [f"{_id('layer', image.top.name)} -> {_id('image', image.name)};"
            for image in graph.images]
    return out


def render_dot(graph: Graph) -> str:
    return environment().get_template("graph.dot.j2").render(
        version=__version__, sources=one_line(sources(graph)),
        groups=nodes(graph), arrows=arrows(graph))
