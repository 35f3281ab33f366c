"""Load and validate a manifest file: appc ImageManifest + build steps."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from acigen import appc
from acigen.errors import ManifestError
from acigen.jsoncheck import Node, object_pairs
from acigen.jsontext import LongNumber, line_column, lone_surrogate, parse_int
from acigen.ocistep import platform_of
from acigen.specs import STEPS_KEY
from acigen.steps import Context, Step, parse_step

TYPE_CHECKING = False  # typing costs ~2 ms to import, at every regeneration
if TYPE_CHECKING:
    from typing import Any


@dataclass(frozen=True)
class Manifest:
    path: str                    # as given on the command line
    name: str                    # the file's name without .json: names outputs
    image: dict[str, Any]        # the manifest that goes into the image
    steps: tuple[Step, ...]


def read_document(path: str) -> Any:
    try:
        with open(path, "rb") as src:
            data = src.read()
    except OSError as exc:
        raise ManifestError(path, "", f"cannot read: {exc.strerror}") from None
    return parse_document(path, data)


def parse_document(path: str, data: bytes) -> Any:
    """DATA (read from PATH) as JSON: duplicate keys marked, NaN refused, and
    every failure a ManifestError (too deep a nesting too)."""
    try:
        text = data.decode("utf-8")
        document = json.loads(text, object_pairs_hook=object_pairs,
                              parse_constant=_reject_constant, parse_int=parse_int)
        surrogate = lone_surrogate(document)
    except UnicodeDecodeError as exc:
        raise ManifestError(path, f"byte {exc.start}", "not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ManifestError(path, f"{exc.lineno}:{exc.colno}",
                            f"invalid JSON: {exc.msg}") from None
    except LongNumber as exc:
        raise ManifestError(path, line_column(text, text.find(exc.literal)), str(exc)) from None
    except RecursionError:
        raise ManifestError(path, "", "invalid JSON: nested too deeply") from None
    if surrogate is not None:
        raise ManifestError(path, surrogate, "a lone surrogate escape (\\udXXX) is not "
                            "a character", "write the character itself, or a valid pair")
    return document


def _reject_constant(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not JSON", name, 0)


def output_name(path: str) -> str:
    base = os.path.basename(path)
    return base[: -len(".json")] if base.endswith(".json") else base


def load(path: str, ninja_dir: str, check_files: bool = True) -> Manifest:
    """Read and check PATH; every problem is a ManifestError naming the
    file and the JSON pointer of the offending value."""
    root = Node(path, "", read_document(path))
    fields = appc.check_manifest(root)
    image = appc.image_manifest(root.value)
    appc.check_labels(Node(path, "/labels", image["labels"]))
    ctx = Context(manifest_dir=os.path.dirname(os.path.abspath(path)),
                  ninja_dir=ninja_dir, app=image.get("app"), check_files=check_files,
                  platform=tuple(platform_of(image["labels"])))
    steps_node = fields[STEPS_KEY]
    steps = tuple(parse_step(item, ctx, index + 1)
                  for index, item in enumerate(steps_node.items()))
    if not any(step.helper for step in steps):
        raise steps_node.error("no step makes a root filesystem",
                               "add an image, copy_host_files or create_python_env step")
    return Manifest(path=path, name=output_name(path), image=image, steps=steps)
