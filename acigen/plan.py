"""Manifests -> build graph.  Pure: no I/O, no clock, no environment.

Each step that changes the root filesystem owns a layer named by its chain
key: a hash of the parent layer's key, the step's normalised definition and
the host files it reads as seen from the build directory (plus acigen's
version).  Editing step k changes the keys of k..N and no
others; two images whose steps share a prefix share those layers, emitted
once.  Every path in the graph is relative to the ninja file's directory.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

from acigen import __version__
from acigen.errors import AcigenError
from acigen.fileio import canonical_json, pretty_json
from acigen.manifest import Manifest
from acigen.rules import CHROOT, FETCH, OCI, PACK, PUSH, SIGN
from acigen.sha256 import sha256
from acigen.specs import FetchSpec, ImageSpec, StepSpec
from acigen.steps import Step

TYPE_CHECKING = False  # typing costs ~2 ms to import, at every regeneration
if TYPE_CHECKING:
    from typing import Any

@dataclass(frozen=True)
class Options:
    """Everything the plan depends on besides the manifests."""

    builddir: str                    # relative to the ninja dir
    outputs: tuple[str, ...]         # one image path per manifest, relative
    compression: str = "gzip"
    layer_mode: str = "auto"
    runtime: str | None = None       # None: the helper chooses when it runs
    source_date_epoch: int = 0
    fetch_jobs: int = 4
    cache_dir: str | None = None
    offline: bool = False
    oci_outputs: tuple[str | None, ...] = ()     # per image: its OCI archive, if asked
    docker_outputs: tuple[str | None, ...] = ()  # per image: its docker archive, if asked
    squash: bool = False                         # one OCI layer instead of one per step
    oci_compression: str | None = None           # None: follow -C (see helpers/oci/__main__.py)
    sign: dict[str, Any] | None = None           # signing.SignSpec.to_json(), if asked
    chunk_size: int | None = None                # bytes; None: the compression's default
    # the base directory as seen from the build directory (see input_paths)
    base_from_builddir: str = ".."
    registry: dict[str, Any] | None = None       # helpers/registry/auth.py's Settings
    push_refs: tuple[str | None, ...] = ()       # per image: where to push its OCI image
    cache_repo: str | None = None                # shared layers (--cache-repo)


@dataclass(frozen=True)
class Edge:
    rule: str
    outputs: tuple[str, ...]
    inputs: tuple[str, ...] = ()
    implicit: tuple[str, ...] = ()
    implicit_outputs: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class Layer:
    key: str
    name: str                        # NN-type-KEY
    step: Step
    parent: Layer | None
    stamp: str
    step_file: str


@dataclass(frozen=True)
class Image:
    name: str
    manifest: str                    # relative path of the manifest file
    output: str
    top: Layer
    products: tuple[str, ...] = ()   # every file built for it: ACI, OCI, signatures


@dataclass
class Graph:
    fetches: list[Edge] = field(default_factory=list)
    layers: list[Layer] = field(default_factory=list)
    layer_edges: list[Edge] = field(default_factory=list)
    images: list[Image] = field(default_factory=list)
    image_edges: list[Edge] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)   # side files acigen writes
    regen_inputs: list[str] = field(default_factory=list)
    downloads: dict[str, str] = field(default_factory=dict)  # URL -> its .ref file
    build_paths: list[str] = field(default_factory=list)  # what the build makes in builddir
    aliases: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)  # name -> targets
    optional_inputs: list[str] = field(default_factory=list)  # missing: dirty, no error

    def stamp_edges(self) -> dict[str, Edge]:
        """Every edge by its first output."""
        edges = self.fetches + self.layer_edges + self.image_edges
        return {edge.outputs[0]: edge for edge in edges}


def chain_key(parent: str | None, definition: dict[str, Any],
              inputs: list[str] | None = None) -> str:
    payload: dict[str, Any] = {"acigen": __version__, "parent": parent, "step": definition}
    if inputs:
        payload["inputs"] = inputs
    return sha256(canonical_json(payload)).hexdigest()


def input_paths(step: Step, base_from_builddir: str) -> list[str]:
    """STEP's host files and scanned directories as seen from the build
    directory.  Layers live there, shared by every build file that uses it:
    two manifests in different directories may both read `data.txt`, and
    their layers must differ, so keys name the files, not the words."""
    paths = [*step.inputs, *step.scanned_dirs]
    return sorted({os.path.normpath(os.path.join(base_from_builddir, p)) for p in paths})


class Planner:
    def __init__(self, options: Options, manifest_paths: list[str]) -> None:
        self.opt = options
        self.graph = Graph()
        self.layers: dict[str, Layer] = {}
        self.users: dict[str, list[str]] = {}
        self.fetch_refs: dict[str, str] = {}
        self.fetch_specs: dict[str, FetchSpec] = {}
        self.manifest_paths = manifest_paths
        self.step_layers: dict[str, list[tuple[int, Layer]]] = {}  # image -> its steps
        self.layer_dirs: dict[str, str] = {}  # layer name -> its directory

    def path(self, *parts: str) -> str:
        return os.path.join(self.opt.builddir, *parts)

    # -- layers ------------------------------------------------------------

    def add_manifest(self, manifest: Manifest, manifest_path: str, output: str,
                     index: int) -> None:
        parent: Layer | None = None
        depth = 0
        numbered = self.step_layers.setdefault(manifest.name, [])
        for step in manifest.steps:
            if step.helper is None:
                continue
            depth += 1
            parent = self.add_layer(step, parent, depth, manifest.name)
            numbered.append((step.index, parent))
        assert parent is not None  # manifest.load insists on one layer step
        image = Image(manifest.name, manifest_path, output, parent)
        spec = self.add_pack(image, manifest)
        oci, docker = self.add_oci(image, spec, index)
        signed = [output] + ([oci] if oci else [])
        products = [*signed] + ([docker] if docker else [])
        products += self.add_signatures(image.name, signed)
        products += self.add_push(image.name, oci, index)
        self.graph.images.append(Image(manifest.name, manifest_path, output, parent,
                                       tuple(products)))

    def add_layer(self, step: Step, parent: Layer | None, depth: int, image: str) -> Layer:
        key = chain_key(parent.key if parent else None, step.definition,
                        input_paths(step, self.opt.base_from_builddir))
        self.users.setdefault(key, [])
        if image not in self.users[key]:
            self.users[key].append(image)
        if key in self.layers:
            return self.layers[key]
        name = f"{depth:02d}-{step.kind.tag}-{key[:12]}"
        layer = Layer(key, name, step, parent, self.path("layers", name + ".stamp"),
                      self.path("steps", name + ".json"))
        self.layers[key] = layer
        self.graph.layers.append(layer)
        return layer

    def layer_dir(self, layer: Layer) -> str:
        # memoized: each step's spec lists the directories of all the layers
        # below it, so a 50-step chain asks for some 1,300 of them
        found = self.layer_dirs.get(layer.name)
        if found is None:
            found = self.layer_dirs[layer.name] = self.path("layers", layer.name)
        return found

    def log_file(self, layer: Layer) -> str:
        return self.path("logs", layer.name + ".log")

    def chain(self, layer: Layer | None) -> list[Layer]:
        out = []
        while layer is not None:
            out.append(layer)
            layer = layer.parent
        return out

    def layer_edge(self, layer: Layer) -> Edge:
        step = layer.step
        definition = dict(step.definition)
        implicit = [layer.parent.stamp] if layer.parent else []
        if step.url:
            ref = self.add_fetch(step)
            definition["ref"] = ref
            implicit.append(ref)
        cache = None
        if self.opt.cache_repo:  # shared layers: helpers/registry/layercache.py
            cache = {"repo": self.opt.cache_repo, "registry": self.opt.registry,
                     "cache_dir": self.opt.cache_dir, "inputs": list(step.inputs),
                     "share": step.kind.rule is CHROOT, "offline": self.opt.offline}
            above = self.prefetched_above(layer)
            if above:  # a side file, not an input: an edit above must not rerun the base
                listing = layer.step_file.removesuffix(".json") + ".above.json"
                self.graph.files[listing] = pretty_json(above)
                cache["prefetch"] = listing
        spec = StepSpec(self.layer_dir(layer), definition,
                        [self.layer_dir(p) for p in self.chain(layer.parent)],
                        self.opt.layer_mode, self.log_file(layer),
                        self.opt.runtime if step.kind.rule is CHROOT else None, cache=cache)
        self.graph.files[layer.step_file] = pretty_json(spec.to_json())
        images = ", ".join(self.users[layer.key])
        rule = step.kind.rule
        assert rule is not None  # setup_chroot makes no layer
        return Edge(rule.name, (layer.stamp,), (layer.step_file,),
                    tuple(implicit + list(step.inputs)),
                    description=f"{images}: step {step.index} {step.type} {step.summary}")

    def prefetched_above(self, root: Layer) -> list[str]:
        """For an image step with --cache-repo: the step files of the chroot steps
        above it whose cache keys it can compute (every step between them is a
        chroot step too), parents first: helpers/registry/prefetch.py."""
        if root.parent is not None or root.step.kind.type != "image" or self.opt.offline:
            return []
        reached, out = {id(root)}, []
        for layer in self.graph.layers:  # parents come before their children
            if layer.parent is not None and id(layer.parent) in reached and \
                    layer.step.kind.rule is CHROOT:
                reached.add(id(layer))
                out.append(layer.step_file)
        return out

    # -- downloads -----------------------------------------------------------

    def add_fetch(self, step: Step) -> str:
        url = step.url or ""
        pin = {k: step.definition[k] for k in ("sha256", "sha512") if k in step.definition}
        if url in self.fetch_refs:
            known = self.fetch_specs[url].pins
            for algo, digest in pin.items():
                if known.get(algo, digest) != digest:
                    raise AcigenError(f"{url} is pinned to two different {algo} digests")
                known[algo] = digest
            if known.get("platform") != step.definition.get("platform"):
                raise AcigenError(f"{url} is used for two platforms in one build",
                                  "build the manifests for each platform apart")
            return self.fetch_refs[url]
        name = sha256(url.encode()).hexdigest()[:16]
        ref = self.path("fetch", name + ".ref")
        self.fetch_refs[url] = ref
        spec = FetchSpec(url, pin, [], self.opt.offline, self.opt.cache_dir)
        if "platform" in step.definition:  # a registry image: helpers/registry/pull.py
            spec.platform, spec.registry = step.definition["platform"], self.opt.registry
        self.fetch_specs[url] = spec
        return ref

    def add_lock(self, url: str, lock: str) -> None:
        """A lock file recording URL's digest: that of every manifest using
        it.  An unpinned download depends on its lock files, so deleting the
        URL's entry (to accept a new upstream file) fetches it again; a pin
        is never checked against one.  A file may not exist yet: the first
        fetch writes it."""
        spec = self.fetch_specs[url]
        pinned = bool(spec.pins) or "@sha256:" in url  # a digest reference pins too
        if not pinned and lock not in spec.locks:
            spec.locks.append(lock)

    def fetch_edges(self) -> list[Edge]:
        edges = []
        for url, ref in self.fetch_refs.items():
            spec = self.fetch_specs[url]
            spec_file = ref.removesuffix(".ref") + ".json"
            self.graph.files[spec_file] = pretty_json(spec.to_json())
            users = ", ".join(self.fetch_users(url))
            edges.append(Edge(FETCH.name, (ref,), (spec_file,), tuple(spec.locks),
                              description=f"{users}: fetch {url}"))
        return edges

    def fetch_users(self, url: str) -> list[str]:
        return [image.name for image in self.graph.images
                if any(layer.step.url == url for layer in self.chain(image.top))]

    # -- images --------------------------------------------------------------

    def image_spec(self, name: str, output: str, suffix: str) -> str:
        """images/NAME-TAG.SUFFIX, TAG naming OUTPUT as seen from the build
        directory: build files in two directories sharing it may both make
        `m.aci`, each from its own layers."""
        seen = os.path.normpath(os.path.join(self.opt.base_from_builddir, output))
        tag = sha256(os.fsencode(seen)).hexdigest()[:8]
        return self.path("images", f"{name}-{tag}{suffix}")

    def add_pack(self, image: Image, manifest: Manifest) -> ImageSpec:
        spec_file = self.image_spec(image.name, image.output, ".json")
        spec = ImageSpec(manifest.image, [self.layer_dir(p) for p in self.chain(image.top)],
                         layer_mode=self.opt.layer_mode, compression=self.opt.compression,
                         source_date_epoch=self.opt.source_date_epoch,
                         chunk_cache=self.path("chunks"), chunk_size=self.opt.chunk_size,
                         cache=self.shared_chunks())
        self.graph.files[spec_file] = pretty_json(spec.to_json())
        self.graph.image_edges.append(Edge(
            PACK.name, (image.output,), (spec_file,), (image.top.stamp,),
            description=f"{image.name}: pack {image.output} ({self.opt.compression})"))
        return spec

    def shared_chunks(self) -> dict[str, Any] | None:
        """With --cache-repo, where the pack shares its compressed chunks."""
        if not self.opt.cache_repo:
            return None
        return {"repo": self.opt.cache_repo, "registry": self.opt.registry,
                "cache_dir": self.opt.cache_dir, "offline": self.opt.offline}

    def add_oci(self, image: Image, pack_spec: ImageSpec,
                index: int) -> tuple[str | None, str | None]:
        """The OCI archive (and docker archive) of IMAGE, from the same layers."""
        out = self.opt.oci_outputs[index] if self.opt.oci_outputs else None
        if out is None:
            return None, None
        docker = self.opt.docker_outputs[index] if self.opt.docker_outputs else None
        spec = dataclasses.replace(pack_spec, squash=self.opt.squash, docker_archive=docker,
                                   oci_compression=self.opt.oci_compression,
                                   cache=None)  # not shared; it finds chunks the ACI shared
        spec_file = self.image_spec(image.name, out, ".oci.json")
        self.graph.files[spec_file] = pretty_json(spec.to_json(oci=True))
        extra = (docker,) if docker else ()
        layers = "1 layer" if self.opt.squash else "a layer per step"
        self.graph.image_edges.append(Edge(
            OCI.name, (out,), (spec_file,), (image.top.stamp,), extra,
            description=f"{image.name}: OCI image {out} ({layers})"))
        return out, docker

    def add_signatures(self, name: str, signed: list[str]) -> list[str]:
        """A detached signature of the ACI and of the OCI archive."""
        if self.opt.sign is None:
            return []
        out = []
        for target in signed:
            spec_file = self.image_spec(os.path.basename(target), target, ".sign.json")
            self.graph.files[spec_file] = pretty_json({**self.opt.sign, "image": target})
            self.graph.image_edges.append(Edge(
                SIGN.name, (target + ".asc",), (spec_file,), (target,),
                description=f"{name}: sign {target} with key {self.opt.sign['key']}"))
            out.append(target + ".asc")
        return out

    def add_push(self, name: str, oci: str | None, index: int) -> list[str]:
        """Push the OCI archive to a registry: helpers/push/__main__.py."""
        ref = self.opt.push_refs[index] if self.opt.push_refs else None
        if ref is None or oci is None:
            return []
        spec_file = self.image_spec(os.path.basename(oci), oci, ".push.json")
        self.graph.files[spec_file] = pretty_json({"archive": oci, "ref": ref,
                                                   "registry": self.opt.registry})
        self.graph.image_edges.append(Edge(
            PUSH.name, (oci + ".pushed",), (spec_file,), (oci,),
            description=f"{name}: push {oci} to {ref}"))
        return [oci + ".pushed"]

    def finish(self) -> Graph:
        for layer in self.graph.layers:
            self.graph.layer_edges.append(self.layer_edge(layer))
        for image, manifest_path in zip(self.graph.images, self.manifest_paths, strict=True):
            lock = lock_path(manifest_path)
            for layer in self.chain(image.top):
                if layer.step.url:
                    self.add_lock(layer.step.url, lock)
        self.graph.fetches = self.fetch_edges()
        self.graph.downloads = dict(self.fetch_refs)
        self.graph.aliases = self.aliases()
        self.graph.build_paths = self.build_paths()
        regen = set(self.manifest_paths)
        for layer in self.graph.layers:
            regen.update(layer.step.scanned_dirs)
        self.graph.regen_inputs = sorted(regen)
        # a lock file may not exist yet; a manifest or scanned directory deleted
        # (with its step) must rerun acigen, not stop ninja before it can
        locks = [lock for edge in self.graph.fetches for lock in edge.implicit]
        self.graph.optional_inputs = list(dict.fromkeys(locks + self.graph.regen_inputs))
        return self.graph


    def build_paths(self) -> list[str]:
        """Every file and directory this graph's build keeps in the build dir."""
        out = set(self.graph.files) | set(self.fetch_refs.values())
        for layer in self.graph.layers:
            out.update((self.layer_dir(layer), layer.stamp, layer.stamp + ".d",
                        self.layer_dir(layer) + ".lock",
                        self.log_file(layer)))
        return sorted(out)

    def aliases(self) -> list[tuple[str, tuple[str, ...]]]:
        """`NAME` for each image, `NAME/step-NN` for each of its layers."""
        out: list[tuple[str, tuple[str, ...]]] = []
        for image in self.graph.images:
            out.append((image.name, image.products))
            for index, layer in self.step_layers[image.name]:
                out.append((f"{image.name}/step-{index:02d}", (layer.stamp,)))
        return out


def lock_path(manifest_path: str) -> str:
    base = manifest_path[: -len(".json")] if manifest_path.endswith(".json") else manifest_path
    return base + ".lock.json"


def plan(manifests: list[Manifest], manifest_paths: list[str], options: Options) -> Graph:
    """The build graph of MANIFESTS (paths relative to the ninja dir)."""
    if len(set(options.outputs)) != len(options.outputs):
        raise AcigenError("two manifests would write the same image file",
                          "give the manifest files different names")
    planner = Planner(options, manifest_paths)
    for index, (manifest, path, output) in enumerate(
            zip(manifests, manifest_paths, options.outputs, strict=True)):
        planner.add_manifest(manifest, path, output, index)
    return planner.finish()
