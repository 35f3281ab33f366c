"""Harvest test vectors from appc's own Go tests into appc_data/vectors.jsonl.

    .venv/bin/python -m tests.compiler.appc_harvest > tests/compiler/appc_data/vectors.jsonl

Only data is taken: the JSON and string literals of schema/*_test.go (each
vector names its file and line), placed where the literal belongs in an
otherwise valid image manifest, plus appc's examples/image.json and the
targeted probes of tests/compiler/appc_probes.py. appc's Go code decides the
verdicts at test time; nothing here says what they should be.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

from tests.compiler.appc_probes import SPEC_EXAMPLE, placed, probes

APPC = Path("/usr/share/gocode/src/github.com/appc/spec/schema")
FORMAT_VERB = re.compile(r"%[-+#0-9.]*[vdsqtTxX]")
LITERAL = re.compile(r'`([^`]*)`|"((?:[^"\\\n]|\\.)*)"')

# test file -> where its literals go (a JSON pointer into BASE; "" = whole)
PLACES = {
    "image_test.go": "",
    "types/acidentifier_test.go": "/name",
    "types/ackind_test.go": "/acKind",
    "types/acname_test.go": "/app/mountPoints/0/name",
    "types/annotations_test.go": "/annotations/0/value",
    "types/app_test.go": "/app",
    "types/date_test.go": "/annotations/0/value",
    "types/dependencies_test.go": "/dependencies/0",
    "types/environment_test.go": "/app/environment/0/name",
    "types/exec_test.go": "/app/exec",
    "types/hash_test.go": "/dependencies/0/imageID",
    "types/isolator_linux_specific_test.go": "/app/isolators/0",
    "types/isolator_resources_test.go": "/app/isolators/0",
    "types/isolator_test.go": "/app/isolators/0",
    "types/isolator_unix_test.go": "/app/isolators/0",
    "types/labels_test.go": "/labels",
    "types/mountpoint_test.go": "/app/mountPoints/0/name",
    "types/port_test.go": "/app/ports/0/name",
    "types/semver_test.go": "/acVersion",
    "types/url_test.go": "/annotations/0/value",
}
# the annotation a literal of these files is the value of
ANNOTATION = {"types/date_test.go": "created", "types/url_test.go": "homepage",
              "types/annotations_test.go": "homepage"}


def literals(path: Path) -> Iterator[tuple[int, str]]:
    """(line, text) of each Go string literal in PATH that could be a value."""
    source = path.read_text()
    for match in LITERAL.finditer(source):
        line = source.count("\n", 0, match.start()) + 1
        line_text = source.splitlines()[line - 1].strip()
        if line_text.startswith("//") or FORMAT_VERB.search(match.group(0)):
            continue  # comments and printf formats are no vectors
        if match.group(1) is not None:
            yield line, match.group(1)
        else:
            try:
                yield line, ast.literal_eval('"' + match.group(2) + '"')
            except (SyntaxError, ValueError):
                continue


def as_json(text: str) -> str | None:
    """TEXT as JSON text: itself when it parses, else as a JSON string."""
    try:
        json.loads(text)
    except ValueError:
        return json.dumps(text) if "\n" not in text else None
    return text.strip()


def harvested() -> Iterator[dict[str, str]]:
    for name, pointer in sorted(PLACES.items()):
        seen: set[str] = set()
        for line, text in literals(APPC / name):
            value = as_json(text)
            if value is None or value in seen or (pointer == "" and not value.startswith("{")):
                continue
            seen.add(value)
            yield {"source": f"appc schema/{name}:{line}",
                   "document": placed(pointer, value, ANNOTATION.get(name))}


def main() -> None:
    vectors = [{"source": "appc/spec examples/image.json at ba99d6b8", "document": SPEC_EXAMPLE},
               *harvested(), *probes()]
    for vector in vectors:
        sys.stdout.write(json.dumps(vector) + "\n")


if __name__ == "__main__":
    main()
