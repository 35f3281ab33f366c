"""acigen's manifest checks against appc's own Go code (the differential test).

    .venv/bin/python -m tests.compiler.appc_oracle   # prints the agreement

appc's verdict comes from tests/compiler/appcheck (our Go program around
schema.ImageManifest.UnmarshalJSON, what `actool validate` runs), acigen's
from manifest.load on the same document plus a build step. Every
disagreement must be a deliberate one, listed in docs/manifest.md.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from acigen import appc, manifest
from acigen.errors import AcigenError

HERE = Path(__file__).parent
VECTORS = HERE / "appc_data" / "vectors.jsonl"
DOCS = HERE.parent.parent / "docs" / "manifest.md"
GOPATH = "/usr/share/gocode"
STEP = '"-aci-packer-build-steps-": [{"type": "copy_host_files", "binaries": ["/bin/sh"]}]'

# id (docs/manifest.md's table) -> acigen's error line, when appc accepts
STRICTER = {
    "unknown-key": r": unknown key ",
    "duplicate-key": r": key '.*' appears more than once",
    "null": r": expected .*, got null$",
    "required-key": r": missing required key '(name|value|path|protocol|exec)'$",
    "duplicate-name": r"/name: (mount point|port) '.*' appears more than once$",
    "absolute-path": r"(/mountPoints/\d+/path|/pathWhitelist/\d+): '.*' is not an absolute path$",
    "port-range": r"(/count: must be at least 1|/protocol: must not be empty|go past 65535)",
    "ac-version": r"/acVersion: (.* is newer than appc|'.*' is not a semantic version)",
    "date": r"created '.*' (is not an RFC 3339 date|has a time zone offset out of range)$",
    "url": r"(homepage|documentation) '.*' (is not an absolute URL|has a host that is not)",
    "image-id": r"/imageID: '.*' is not an image ID",
    "negative-gid": r"/supplementaryGIDs/\d+: must be at least 0",
    "empty-program": r"/exec/0: the program name must not be empty$",
    "quantity": r"/(limit|request): ('.*' is not a resource quantity|must be at least 0|"
                r"expected a string, got a number)",
    "surrogate": r": a lone surrogate escape",
    "long-number": r": an integer of \d+ digits is out of range$",
    "utf-8": r": not UTF-8 text$",
    "depth": r": invalid JSON: nested too deeply$",
}
# id -> appc's error, where acigen accepts (and writes an image appc accepts)
LENIENT = {
    "minus-zero": r"cannot unmarshal number -0 into .* of type uint",
}


def build_appcheck(directory: Path) -> Path:
    """Build our Go checker against Debian's appc sources, as .ci/setup builds actool."""
    binary = directory / "appcheck"
    env = {**os.environ, "GOPATH": GOPATH, "GO111MODULE": "off",
           "GOCACHE": os.environ.get("GOCACHE", "/tmp/acigen-gocache")}
    subprocess.run(["go", "build", "-o", str(binary), "./tests/compiler/appcheck"],
                   cwd=HERE.parent.parent, env=env, check=True)
    return binary


def appc_verdicts(binary: Path, documents: list[bytes]) -> list[str]:
    """appc's verdict on each document: "ok", "error ..." or "panic ..."."""
    lines = b"".join(base64.b64encode(doc) + b"\n" for doc in documents)
    out = subprocess.run([str(binary)], input=lines, capture_output=True, check=True).stdout
    verdicts = out.decode(errors="replace").split("\n")[:-1]  # not splitlines: \x85 is no line end
    assert len(verdicts) == len(documents)
    return verdicts


def _insert_after_brace(text: bytes, member: bytes) -> bytes | None:
    """TEXT (a JSON object) with MEMBER as its first member, or None."""
    stripped = text.lstrip()
    if not stripped.startswith(b"{"):
        return None
    rest = stripped[1:]
    separator = b"" if rest.lstrip().startswith(b"}") else b","
    return b"{" + member + separator + rest


def with_step(document: bytes) -> bytes:
    return _insert_after_brace(document, STEP.encode()) or document


def with_defaults(document: bytes) -> bytes:
    """DOCUMENT with acigen's defaults (acKind, acVersion) where it lacks them."""
    try:
        parsed = json.loads(document)
    except (ValueError, RecursionError):
        return document
    if not isinstance(parsed, dict):
        return document
    for key, value in (("acVersion", appc.AC_VERSION), ("acKind", "ImageManifest")):
        if key not in parsed:
            document = _insert_after_brace(document, f'"{key}": "{value}"'.encode()) or document
    return document


@dataclass
class Verdict:
    accepted: bool
    message: str = ""
    image: bytes = b""     # the manifest acigen would write, when accepted
    crashed: bool = False


def acigen_verdict(document: bytes, workdir: Path) -> Verdict:
    path = workdir / "manifest.json"
    path.write_bytes(with_step(document))
    try:
        loaded = manifest.load(str(path), str(workdir), check_files=False)
    except AcigenError as exc:
        return Verdict(False, str(exc).replace(str(path), "manifest.json"))
    except Exception as exc:  # a crash: acigen would exit 3
        return Verdict(False, f"{type(exc).__name__}: {exc}"[:300], crashed=True)
    return Verdict(True, image=json.dumps(loaded.image).encode())


def classify(ours: Verdict, theirs: str) -> str:
    """"agree", a deliberate difference's id, or "BUG ..." (a failure)."""
    if ours.crashed:
        return f"BUG crash: {ours.message}"
    if ours.accepted == (theirs == "ok"):
        return "agree"
    table, text = (STRICTER, ours.message) if not ours.accepted else (LENIENT, theirs)
    for ident, pattern in table.items():
        if re.search(pattern, text):
            return ident
    side = "acigen refuses" if not ours.accepted else "appc refuses"
    return f"BUG {side}: {text}"


@dataclass
class Report:
    outcomes: Counter[str] = field(default_factory=Counter)
    bugs: list[str] = field(default_factory=list)
    crashes: int = 0

    def line(self) -> str:
        total = sum(self.outcomes.values())
        agree = self.outcomes["agree"]
        return (f"agreement with appc 0.8.11: {agree}/{total} = {100 * agree / total:.1f}% "
                f"({total - agree - len(self.bugs)} deliberate, {len(self.bugs)} bugs, "
                f"{self.crashes} crashes)")


def compare(binary: Path, documents: list[tuple[str, bytes]]) -> Report:
    """Both verdicts on each (source, document); every image acigen would
    write is checked by appc too."""
    report = Report()
    with tempfile.TemporaryDirectory() as tmp:
        ours = [acigen_verdict(doc, Path(tmp)) for _, doc in documents]
    theirs = appc_verdicts(binary, [with_defaults(doc) for _, doc in documents])
    images = appc_verdicts(binary, [v.image for v in ours if v.accepted])
    for (source, _), verdict, appc_says in zip(documents, ours, theirs, strict=True):
        outcome = classify(verdict, appc_says)
        report.outcomes[outcome] += 1
        report.crashes += verdict.crashed
        if outcome.startswith("BUG"):
            report.bugs.append(f"{source}: {outcome}")
    accepted = [source for (source, _), v in zip(documents, ours, strict=True) if v.accepted]
    for source, image_verdict in zip(accepted, images, strict=True):
        if image_verdict != "ok":
            report.bugs.append(f"{source}: BUG appc refuses acigen's image: {image_verdict}")
    return report


def vectors() -> list[tuple[str, bytes]]:
    rows = [json.loads(line) for line in VECTORS.read_text().splitlines()]
    return [(row["source"], row["document"].encode("utf-8", "surrogatepass")) for row in rows]


def documented_ids() -> set[str]:
    """The ids in docs/manifest.md's tables (rows like `| `id` | ...`)."""
    return set(re.findall(r"^\| `([a-z0-9-]+)` \|", DOCS.read_text(), re.MULTILINE))


def main() -> int:
    if not shutil.which("go"):
        print("go is not installed", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        report = compare(build_appcheck(Path(tmp)), vectors())
    print(report.line())
    for bug in report.bugs:
        print(bug)
    return 1 if report.bugs else 0


if __name__ == "__main__":
    sys.exit(main())
