"""What bench/run's rows share: the plan (how many runs), the work directory, and the
things built once (the minbase tarball, the nginx example, its root filesystem).

Something that failed to build fails once: the rows that need it are skipped with
the same reason instead of trying again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import workspace
from common import Sample, timed


class Skip(Exception):
    """A row cannot be measured here; the message says why."""


@dataclass(frozen=True)
class Plan:
    name: str
    noop: int  # no-op ninja runs (and `true` runs)
    full_build: int  # clean builds of the 10-step manifest
    clean_nginx: int  # clean builds of the nginx example
    incremental: int  # edits of its last step
    nginx_xz: bool  # row 2 again with -C xz (a clean build takes ~45 s on 2 cores)
    regen: int
    pack: dict[str, int]  # compression -> runs
    unpack: int
    unpack_formats: tuple[str, ...]
    settle: float  # seconds for ext4 to free the previous unpacked tree
    deps: int
    fetch: int
    fetch_size: int  # bytes per archive
    fetch_rate: int  # bytes per second per connection
    tornado: bool  # the tornado example's size too


QUICK = Plan("quick", noop=10, full_build=1, clean_nginx=1, incremental=3, nginx_xz=False,
             regen=3, pack={"gzip": 2, "xz": 1}, unpack=3, unpack_formats=("gz",),
             settle=1.0, deps=2, fetch=1, fetch_size=2**20, fetch_rate=2**20, tornado=False)
FULL = Plan("full", noop=30, full_build=3, clean_nginx=3, incremental=5, nginx_xz=True,
            regen=7, pack={"gzip": 5, "xz": 3}, unpack=5, unpack_formats=("tar", "gz", "xz"),
            settle=3.0, deps=5, fetch=3, fetch_size=4 * 2**20, fetch_rate=2**20, tornado=True)


@dataclass
class NginxBuild:
    workdir: Path
    clean: Sample  # the build that made it, a clean build


@dataclass
class Rootfs:
    label: str  # what it is, for the rows' titles
    tree: Path
    manifest: bytes  # the ACI manifest to pack it with
    is_nginx: bool


@dataclass
class Context:
    work: Path
    plan: Plan
    missing: dict[str, str]  # tool -> why it is missing
    say: Callable[[str], None]
    outputs: dict[str, Path] = field(default_factory=dict)  # files a row left for others
    _once: dict[str, Any] = field(default_factory=dict)

    def once(self, key: str, make: Callable[[], Any]) -> Any:
        """MAKE's result, or its exception again, whoever asks first."""
        if key not in self._once:
            try:
                self._once[key] = make()
            except Exception as error:  # remembered and raised to every later caller
                self._once[key] = error
        result = self._once[key]
        if isinstance(result, Exception):
            raise result
        return result

    def need(self, tool: str) -> None:
        if tool in self.missing:
            raise Skip(self.missing[tool])

    def minbase(self) -> Path:
        return self.once("minbase", self._minbase)

    def _minbase(self) -> Path:
        from tests.support.rootfs import cache_dir, debian_minbase_tarball
        if not (cache_dir() / "bookworm-minbase.tar").exists():
            self.need("debootstrap")
            self.say("making the Debian bookworm minbase tarball with debootstrap (once)")
        return debian_minbase_tarball()

    def nginx(self, compression: str = "gzip") -> NginxBuild:
        return self.once(f"nginx-{compression}", lambda: self._nginx(compression))

    def _nginx(self, compression: str) -> NginxBuild:
        workdir = self.nginx_dir(f"nginx-{compression}")
        self.say(f"building the nginx example (-C {compression}), a clean build")
        return NginxBuild(workdir, timed(lambda: self.build_nginx(workdir, compression)))

    def nginx_dir(self, name: str) -> Path:
        workdir = workspace.fresh_dir(self.work, name)
        workspace.link_minbase(workdir, self.minbase())
        workspace.nginx_manifest(workdir)
        return workdir

    @staticmethod
    def build_nginx(workdir: Path, compression: str) -> None:
        workspace.acigen(workdir, "-C", compression, "nginx.json")
        workspace.ninja(workdir)

    def rootfs(self) -> Rootfs:
        return self.once("rootfs", self._rootfs)

    def _rootfs(self) -> Rootfs:
        """The nginx example's root filesystem (or, if nginx cannot be built, minbase)."""
        dest = self.work / "rootfs"
        try:
            aci = self.nginx().workdir / "nginx.aci"
        except Exception as error:
            self.say(f"nginx failed ({str(error).splitlines()[0]}): using Debian minbase")
            from tests.support.rootfs import debian_minbase_tree
            manifest = b'{"acKind":"ImageManifest","acVersion":"0.8.11","name":"bench/minbase"}'
            return Rootfs("Debian minbase root (the nginx build failed)",
                          debian_minbase_tree(dest), manifest, False)
        return Rootfs("nginx root", workspace.image_rootfs(aci, dest),
                      workspace.image_manifest(aci), True)
