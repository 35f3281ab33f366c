"""The ninja rules proposed for the lead's build.ninja, run by real ninja on
top of a build.ninja acigen generated: OCI + docker archive, then both
images signed, then nothing to do."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from acigen.signing import check_signing
from tests.sign.test_sign import KEY, keyring
from tests.support.build import acigen, run_ninja

EXAMPLES = Path(__file__).parent.parent.parent / "examples"

EXTRA = """include build.ninja

rule acigen_oci
  command = $acigen_python -m acigen.helpers.oci --image $in --out $oci $oci_flags
  description = $desc

rule acigen_sign
  command = $acigen_python -m acigen.helpers.sign --spec $sign_spec $in --out $out
  description = $desc

build bash.oci.tar | bash.docker.tar: acigen_oci {pack_spec} | bash.aci
  oci = bash.oci.tar
  oci_flags = --docker-archive bash.docker.tar
  desc = bash: OCI image bash.oci.tar

build bash.aci.asc: acigen_sign bash.aci | .acigen/sign.json
  sign_spec = .acigen/sign.json
  desc = bash: sign bash.aci

build bash.oci.tar.asc: acigen_sign bash.oci.tar | .acigen/sign.json
  sign_spec = .acigen/sign.json
  desc = bash: sign bash.oci.tar
"""


def test_oci_and_sign_edges_under_ninja(tmp_path: Path, no_mount_leaks) -> None:
    work = tmp_path / "bash"
    shutil.copytree(EXAMPLES / "bash", work)
    acigen(work, "bash.json")
    [pack_spec] = (work / ".acigen" / "images").glob("bash-*.json")  # acigen's own
    (work / "extra.ninja").write_text(EXTRA.format(pack_spec=pack_spec.relative_to(work)))
    for home in keyring(None):
        spec = check_signing(KEY, str(home))
        (work / ".acigen" / "sign.json").write_text(json.dumps(spec.to_json()))
        targets = ["bash.oci.tar.asc", "bash.aci.asc", "bash.docker.tar"]
        run_ninja(work, "-f", "extra.ninja", *targets)
        for image in ("bash.aci", "bash.oci.tar"):
            subprocess.run(["gpg", "--batch", "--homedir", str(home), "--verify",
                            str(work / f"{image}.asc"), str(work / image)],
                           check=True, capture_output=True)
        assert "no work to do" in run_ninja(work, "-f", "extra.ninja", *targets).stdout
