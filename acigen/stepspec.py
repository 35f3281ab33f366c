"""What a layer step's helper reads: its step file (StepSpec) and the chroot
settings in it (ChrootSettings), with the checks every spec shares.

Split from acigen/specs.py, and written with namedtuple, not dataclasses:
every chroot step loads this module, and dataclasses (with inspect, ast and
dis) and the making of each class cost a step ~10 ms (bench/chroot_run.py).
acigen/specs.py re-exports all of it.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Sequence

from acigen import __version__
from acigen.errors import HelperError
from acigen.fileio import read_json

TYPE_CHECKING = False  # typing costs every step ~2 ms to import
if TYPE_CHECKING:
    from typing import Any, TypeVar

    from acigen.specs import ImageSpec

    SpecT = TypeVar("SpecT", "ImageSpec", "StepSpec")

# The PATH an image's programs get when nothing says otherwise (the OCI
# runtime's and Docker's default).
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

LAYER_MODES = ("auto", "overlay", "fuse", "copy")   # --layer-mode; the image file's layer_mode

# setup_chroot's settings and their defaults: the original tool's (what a
# cmd step gets when no setup_chroot came first)
_CHROOT_FIELDS = {"copy_resolvconf": True, "copy_hosts": True, "mount_proc": True,
                  "mount_dev": True, "mount_sys": True, "make_debian_policy_rc": False}


class ChrootSettings(namedtuple("ChrootSettings", _CHROOT_FIELDS,
                                defaults=_CHROOT_FIELDS.values())):
    """setup_chroot's settings, in a step file's `chroot`."""

    __slots__ = ()
    copy_resolvconf: bool
    copy_hosts: bool
    mount_proc: bool
    mount_dev: bool
    mount_sys: bool
    make_debian_policy_rc: bool

    @classmethod
    def from_step(cls, value: Any) -> ChrootSettings:
        if value is None:
            return cls()
        if not isinstance(value, dict):
            raise HelperError(f"step: chroot: expected an object, got {type(value).__name__}")
        for key, setting in value.items():
            if key not in CHROOT_KEYS:
                raise HelperError(f"step: chroot: unknown setting {key!r}",
                                  hint="known: " + ", ".join(sorted(CHROOT_KEYS)))
            if not isinstance(setting, bool):
                raise HelperError(f"step: chroot: {key}: expected true or false, "
                                  f"got {setting!r}")
        return cls(**value)


CHROOT_KEYS: tuple[str, ...] = ChrootSettings._fields
CHROOT_DEFAULTS: dict[str, bool] = dict(_CHROOT_FIELDS)


def load_spec(kind: type[SpecT], path: str) -> SpecT:
    """The spec file at PATH, read and checked: a StepSpec or an ImageSpec."""
    data = read_json(path)
    check(isinstance(data, dict), f"{path}: expected a JSON object")
    return kind.from_json(data, path)


def check(condition: bool, message: str) -> None:
    if not condition:
        raise HelperError(message)


def choice(value: Any, where: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise HelperError(f"{where}: expected one of {', '.join(choices)}, got {value!r}")
    return str(value)


_STEP_FIELDS = ("layer", "step", "lower", "layer_mode", "log", "runtime", "label", "cache")


class StepSpec(namedtuple("StepSpec", _STEP_FIELDS,
                          defaults=((), "auto", None, None, None, None))):
    """BUILDDIR/steps/NAME.json: one layer step, what the step helpers
    (unpack, copy_host, chroot_run, extract, python_env) read."""

    __slots__ = ()
    layer: str                   # the layer directory this step makes
    step: dict[str, Any]         # the step's definition, as the compiler normalised it
    lower: Sequence[str]         # layers below, nearest first
    layer_mode: str
    log: str | None
    runtime: str | None          # chroot steps: --runtime; None: the helper chooses
    label: str | None            # how messages name the step (tests set it)
    cache: dict[str, Any] | None  # --cache-repo: helpers/registry/layercache.py

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"acigen": __version__, "layer": self.layer,
                                "lower": list(self.lower), "layer_mode": self.layer_mode,
                                "log": self.log, "step": self.step}
        if self.runtime:
            data["runtime"] = self.runtime
        if self.cache is not None:
            data["cache"] = self.cache
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], path: str) -> StepSpec:
        layer, lower, step = data.get("layer"), data.get("lower", []), data.get("step")
        check(isinstance(layer, str) and bool(layer), f"{path}: layer: expected a directory")
        check(isinstance(lower, list) and all(isinstance(d, str) and d for d in lower),
              f"{path}: lower: expected a list of directories")
        check(isinstance(step, dict), f"{path}: step: expected a JSON object")
        for key in ("log", "runtime", "label"):
            check(data.get(key) is None or isinstance(data[key], str),
                  f"{path}: {key}: expected a string")
        cache = data.get("cache")
        check(cache is None or isinstance(cache, dict), f"{path}: cache: expected an object")
        return cls(layer, step, lower,
                   choice(data.get("layer_mode", "auto"), f"{path}: layer_mode", LAYER_MODES),
                   data.get("log"), data.get("runtime"), data.get("label"), cache)
