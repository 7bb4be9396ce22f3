"""scripts/rehearse_publish.sh in its small mode: small stand-ins of the paper's files
served by a local mirror on 127.0.0.1 under the publishers' paths; every paper-profile
download goes through the registry into an empty cache, and every mirrored address
passes check-urls. (The whole rehearsal, site and browser test included, is
run by hand: `bash scripts/rehearse_publish.sh --scale small`; output in the README.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_small_rehearsal_downloads_the_paper_profile_through_the_mirror(tmp_path):
    # The configured cache ($PERTURBBOOK_CACHE, seeded by command 1) stays: the
    # rehearsal copies the paper's spreadsheets and the quick profile's files from it
    # into the mirror, and gives its own builds an empty cache of their own (issue 32:
    # popping it here sent the rehearsal to the default cache, empty on a fresh machine,
    # and to the network).
    env = dict(os.environ, VENV=sys.prefix, PYTHONPATH=str(ROOT))
    for key in ("PERTURBBOOK_MIRROR", "PERTURBBOOK_REGISTRY", "PERTURBBOOK_USER_CACHE"):
        env.pop(key, None)
    result = subprocess.run(
        [
            "bash",
            "scripts/rehearse_publish.sh",
            "--scale",
            "small",
            "--stage",
            "data",
            "--workdir",
            str(tmp_path / "work"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr[-3000:]
    assert "mirror at http://127.0.0.1:" in out
    assert "fetch       ok" in out and "check-urls  ok" in out
    assert "all 6 registry addresses answer with the registered files" in out
    mirror = tmp_path / "work" / "mirror"
    assert (mirror / "figshare.com" / "ndownloader" / "files" / "44477939").is_file()
    assert (
        mirror / "dataverse.harvard.edu" / "api" / "access" / "datafile" / "7458695"
    ).is_file()
    assert (mirror / "dataverse.harvard.edu" / "api" / "files" / "7458695").is_file()
    cache = tmp_path / "work" / "cache"
    assert (cache / "norman_from_scfoundation_data.zip").is_file()
    assert (
        cache
        / "replogle_rpe1_essential"
        / "replogle_rpe1_essential"
        / "perturb_processed.h5ad"
    ).is_file()
