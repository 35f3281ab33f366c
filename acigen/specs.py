"""What the compiler and the helpers both assume about the files between them.

The compiler writes a spec file per edge (step, image, fetch, sign); the
helper that ninja runs reads it.  The names and defaults both sides rely on
are written here, once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from acigen import __version__
from acigen.errors import HelperError

# what a layer step's helper reads lives in stepspec.py (a step loads only that)
from acigen.stepspec import CHROOT_DEFAULTS as CHROOT_DEFAULTS
from acigen.stepspec import CHROOT_KEYS as CHROOT_KEYS
from acigen.stepspec import DEFAULT_PATH as DEFAULT_PATH
from acigen.stepspec import LAYER_MODES as LAYER_MODES
from acigen.stepspec import ChrootSettings as ChrootSettings
from acigen.stepspec import StepSpec as StepSpec
from acigen.stepspec import check as _check
from acigen.stepspec import choice as _choice
from acigen.stepspec import load_spec as load_spec

TYPE_CHECKING = False  # typing costs ~2 ms to import
if TYPE_CHECKING:
    from typing import Any

# The manifest key holding the build steps; the packed manifest leaves it out.
STEPS_KEY = "-aci-packer-build-steps-"

COMPRESSIONS = ("none", "gzip", "bzip2", "xz")      # an ACI's (-C)
OCI_COMPRESSIONS = ("gzip", "zstd", "none")         # an OCI image's layers


@dataclass(frozen=True)
class ImageSpec:
    """BUILDDIR/images/NAME-TAG.json (and .oci.json): what acigen-pack and
    acigen-oci read to make an image of a chain of layers.  The compiler
    writes it with to_json, both helpers read it with load; the manifest is
    checked by each helper (pack needs a whole appc manifest, oci a name)."""

    manifest: Any
    layers: list[str]                    # layer directories, nearest first
    layer_mode: str = "auto"
    compression: str = "gzip"            # the ACI's; also oci's default (none or gzip)
    source_date_epoch: int = 0
    chunk_cache: str | None = None
    chunk_size: int | None = None        # average, in bytes; None: the compression's
    jobs: int | None = None
    tag: str | None = None               # oci: the image's tag
    squash: bool = False                 # oci: one layer
    docker_archive: str | None = None    # oci: also a docker archive, here
    oci_compression: str | None = None   # oci: None follows `compression`
    cache: dict[str, Any] | None = None  # --cache-repo: helpers/registry/chunkshare.py

    @property
    def oci_layer_compression(self) -> str:
        """oci_compression, or what the ACI's compression implies."""
        return self.oci_compression or ("none" if self.compression == "none" else "gzip")

    def to_json(self, oci: bool = False) -> dict[str, Any]:
        """What the compiler writes (keys it leaves out stay out: the bytes
        of the generated files do not change)."""
        data: dict[str, Any] = {
            "acigen": __version__, "manifest": self.manifest, "layers": self.layers,
            "layer_mode": self.layer_mode, "compression": self.compression,
            "source_date_epoch": self.source_date_epoch, "chunk_cache": self.chunk_cache}
        if self.chunk_size:
            data["chunk_size"] = self.chunk_size
        if self.cache is not None:
            data["cache"] = self.cache
        if oci:
            data.update(squash=self.squash, docker_archive=self.docker_archive)
            if self.oci_compression:
                data["oci_compression"] = self.oci_compression
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], path: str) -> ImageSpec:
        dirs = data.get("layers")
        _check(isinstance(dirs, list) and bool(dirs) and
               all(isinstance(d, str) and d for d in dirs),
               f"{path}: layers: expected a non-empty list of directories")
        cache, tag = data.get("chunk_cache"), data.get("tag")
        _check(cache is None or (isinstance(cache, str) and bool(cache)),
               f"{path}: chunk_cache: expected a directory or null")
        _check(tag is None or isinstance(tag, str), f"{path}: tag: expected a string")
        docker, squash = data.get("docker_archive"), data.get("squash", False)
        _check(docker is None or (isinstance(docker, str) and bool(docker)),
               f"{path}: docker_archive: expected a file name or null")
        _check(isinstance(squash, bool), f"{path}: squash: expected true or false")
        shared = data.get("cache")
        _check(shared is None or isinstance(shared, dict), f"{path}: cache: expected an object")
        return cls(
            manifest=data.get("manifest"), layers=dirs,
            layer_mode=_choice(data.get("layer_mode", "auto"), f"{path}: layer_mode",
                               LAYER_MODES),
            compression=_choice(data.get("compression", "gzip"), f"{path}: compression",
                                COMPRESSIONS),
            source_date_epoch=_integer(data.get("source_date_epoch", 0),
                                       f"{path}: source_date_epoch", 0),
            chunk_cache=cache,
            chunk_size=_optional_integer(data, "chunk_size", path, 4096),
            jobs=_optional_integer(data, "jobs", path, 1),
            tag=tag, squash=squash, docker_archive=docker,
            oci_compression=None if data.get("oci_compression") is None else _choice(
                data["oci_compression"], f"{path}: oci_compression", OCI_COMPRESSIONS),
            cache=shared)


def _integer(value: Any, where: str, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise HelperError(f"{where}: expected an integer >= {least}, got {value!r}")
    return value


def _optional_integer(data: dict[str, Any], key: str, path: str, least: int) -> int | None:
    return _integer(data[key], f"{path}: {key}", least) if key in data else None


DIGESTS = {"sha256": 64, "sha512": 128}


def pins_of(spec: dict[str, Any]) -> dict[str, str]:
    """The sha256/sha512 pins in SPEC, checked for form."""
    pins = {}
    for algo, length in DIGESTS.items():
        value = spec.get(algo)
        if value is None:
            continue
        if not isinstance(value, str) or len(value) != length or \
                value.strip("0123456789abcdef"):
            raise HelperError(f"{algo} must be {length} lowercase hex digits, got {value!r}")
        pins[algo] = value
    return pins


SCHEMES = ("http", "https", "file")   # what acigen-fetch downloads


@dataclass
class FetchSpec:
    """BUILDDIR/fetch/H.json: one download, what acigen-fetch reads (also
    built from its command line)."""

    url: str
    pins: dict[str, str] = field(default_factory=dict)
    locks: list[str] = field(default_factory=list)
    offline: bool = False
    cache_dir: str | None = None
    platform: list[Any] | None = None       # a registry image's [os, arch, variant]
    registry: dict[str, Any] | None = None  # its registry settings (helpers/registry/auth.py)

    def to_json(self) -> dict[str, Any]:
        data = {"url": self.url, **self.pins, "locks": self.locks, "offline": self.offline,
                "cache_dir": self.cache_dir}
        if self.platform is not None:
            data.update(platform=self.platform, registry=self.registry)
        return data

    @classmethod
    def from_json(cls, data: Any, where: str) -> FetchSpec:
        if not isinstance(data, dict) or not isinstance(data.get("url"), str):
            raise HelperError(f"{where}: not a fetch spec (no \"url\" string)")
        locks = data.get("locks", [])
        if not isinstance(locks, list) or not all(isinstance(lock, str) for lock in locks):
            raise HelperError(f"{where}: \"locks\" is not a list of file names")
        spec = cls(data["url"], pins_of(data), locks, bool(data.get("offline")),
                   data.get("cache_dir"), data.get("platform"), data.get("registry"))
        spec.check()
        return spec

    def check(self) -> None:
        if self.url.startswith("docker://"):
            return  # an image in a registry: helpers/registry/pull.py
        from urllib.parse import urlsplit
        if urlsplit(self.url).scheme not in SCHEMES:
            raise HelperError(f"{self.url}: unsupported URL scheme (use http, https or file)")
