"""Random documents never crash the loader: a valid plan or a one-line error."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acigen import manifest
from acigen.errors import AcigenError
from acigen.plan import Options, plan

VALID = {
    "name": "example.com/app",
    "labels": [{"name": "version", "value": "1"}],
    "app": {"exec": ["/bin/sh"], "user": "0", "group": "0",
            "ports": [{"name": "http", "protocol": "tcp", "port": 80}],
            "environment": [{"name": "A", "value": "b"}]},
    "-aci-packer-build-steps-": [
        {"type": "copy_host_files", "binaries": ["/bin/sh"], "files": [["/etc/hostname",
                                                                        "/etc/hostname"]]},
        {"type": "setup_chroot", "make_debian_policy_rc": True},
        {"type": "cmd", "copy": False, "path": "/bin/sh", "args": ["-c", "true"]},
        {"type": "extract", "keeps": ["/etc"]},
    ],
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20)


def check(document: object, tmp: Path) -> None:
    path = tmp / "m.json"
    path.write_text(json.dumps(document))
    try:
        loaded = manifest.load(str(path), str(tmp))
    except AcigenError as exc:
        assert "\n" not in str(exc)
        return
    plan([loaded], ["m.json"], Options(builddir=".acigen", outputs=("m.aci",)))


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=json_values)
def test_random_documents(document: object, tmp_path: Path) -> None:
    check(document, tmp_path)


def _paths(value: object, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            out += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            out += _paths(child, (*prefix, index))
    return out


@st.composite
def mutated(draw: st.DrawFn) -> object:
    document = json.loads(json.dumps(VALID))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(document)
        target = draw(st.sampled_from(paths))
        if not target:
            return draw(json_values)
        parent = document
        for key in target[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "delete":
            del parent[target[-1]]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.text(max_size=8))] = draw(json_values)
        else:
            parent[target[-1]] = draw(json_values)
    return document


@settings(max_examples=500, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=mutated())
def test_mutated_manifests(document: object, tmp_path: Path) -> None:
    check(document, tmp_path)


def test_valid_manifest_plans(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text(json.dumps(VALID))
    graph = plan([manifest.load(str(path), str(tmp_path))], ["m.json"],
                 Options(builddir=".acigen", outputs=("m.aci",)))
    assert [layer.step.type for layer in graph.layers] == ["copy_host_files", "cmd", "extract"]
