"""acigen's manifest verdicts against appc 0.8.11's own Go code.

Every disagreement must be one of docs/manifest.md's deliberate ones, every
image acigen would write must pass appc's check, and acigen never crashes.
The agreement is printed (pytest -s, or python -m tests.compiler.appc_oracle).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acigen.appc_isolators import VALUE_CHECKS
from tests.compiler import appc_oracle as oracle
from tests.compiler.appc_fuzz import HOSTILE, HUGE, fuzz_documents
from tests.compiler.appc_probes import placed

FUZZ_COUNT = 10_000


@pytest.fixture(scope="session")
def appcheck(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not shutil.which("go") or not Path(oracle.GOPATH, "src/github.com/appc/spec").is_dir():
        if os.environ.get("CI"):
            pytest.fail("CI must run the differential test: .ci/setup installs go and appc")
        pytest.skip("needs go and golang-github-appc-spec-dev (.ci/setup installs them)")
    return oracle.build_appcheck(tmp_path_factory.mktemp("appcheck"))


def check(report: oracle.Report) -> None:
    print(report.line())
    assert report.crashes == 0
    assert not report.bugs, "\n".join(report.bugs[:20])


def test_the_documented_table_is_the_oracle_table() -> None:
    assert oracle.documented_ids() == set(oracle.STRICTER) | set(oracle.LENIENT)


def test_vectors_from_appc_and_probes(appcheck: Path) -> None:
    report = oracle.compare(appcheck, oracle.vectors())
    check(report)
    seen = set(report.outcomes) - {"agree"}
    assert seen == set(oracle.STRICTER) | set(oracle.LENIENT), "a documented difference no " \
        "vector shows, or the other way round"


POINTERS = ("/name", "/acVersion", "/labels", "/labels/0/name", "/labels/1/value", "/app/exec",
            "/app/user", "/app/isolators/0", "/app/isolators/0/value", "/app/mountPoints/0/path",
            "/app/ports/0/port", "/app/environment/0/name", "/dependencies/0/size",
            "/dependencies/0/imageID", "/annotations/0/value", "/app/supplementaryGIDs",
            "/app/workingDirectory")
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**65), max_value=2**65)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12)
    | st.sampled_from([v for v in HOSTILE if v != HUGE and not isinstance(v, (dict, list))]),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.sampled_from(["name", "value", "set", "default", "limit", "x"]),
                      inner, max_size=3),
    max_leaves=6)


def test_generated_mutations(appcheck: Path) -> None:
    documents: list[tuple[str, bytes]] = []

    @settings(derandomize=True, max_examples=800, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(pointer=st.sampled_from(POINTERS), value=JSON_VALUES,
           isolator=st.sampled_from(sorted(VALUE_CHECKS)))
    def collect(pointer: str, value: object, isolator: str) -> None:
        if pointer == "/app/isolators/0":  # a known isolator, any value
            value = {"name": isolator, "value": value}
        text = placed(pointer, json.dumps(value))
        documents.append((f"{pointer} = {json.dumps(value)[:60]}",
                          text.encode("utf-8", "surrogatepass")))

    collect()  # BASE with one value changed, 800 times
    check(oracle.compare(appcheck, documents))


def test_fuzz_never_crashes_and_agrees(appcheck: Path) -> None:
    seeds = [document for _, document in oracle.vectors()]
    documents = [(f"fuzz #{index}", document)
                 for index, document in enumerate(fuzz_documents(seeds, FUZZ_COUNT))]
    assert len(documents) >= 10_000
    check(oracle.compare(appcheck, documents))
