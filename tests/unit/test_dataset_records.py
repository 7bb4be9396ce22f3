"""One record per dataset: ``data/registry.toml`` holds each dataset's facts,
every table elsewhere is read from it, layouts are registered behind one protocol,
and adding a dataset in an existing layout touches the registry only.

The oracles are the tables the registry replaced, typed here as they stood in the
code before (profiles._LABELS, published.TRANSFER_SOURCE / PAPER_SINGLE_DATASETS,
the stand-ins' cell types, modalities and sizes, the control labels of the
atlas-scale loaders), and the paper's published counts (81 / 1,087 / 1,534 single
perturbations after GEARS' GO filter).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import data, loaders, profiles, published, standins
from helpers.errors import BookError

ROOT = Path(__file__).resolve().parents[2]

# the old helpers.profiles._LABELS
LABELS = {
    "norman2019_subset": "Norman 2019 subset (real K562 CRISPRa cells, 34 conditions)",
    "norman2019": "Norman 2019 (real, scFoundation-processed file used by the paper; "
    "GEARS GO filter)",
    "norman2019_gears": "Norman 2019 (real, GEARS processing)",
    "adamson": "Adamson 2016 (real)",
    "replogle_k562_essential": "Replogle 2022 K562 essential (real)",
    "replogle_rpe1_essential": "Replogle 2022 RPE1 essential (real)",
    "replogle_k562_gwps": "Replogle 2022 K562 genome-wide (real, raw single-cell file, "
    "~2.0 M cells)",
}
# the old helpers.standins._CELL_TYPE (obs['cell_type'] of the real files) and _MODALITY
FILE_CELL_TYPE = {
    "norman2019": "K562",
    "norman2019_gears": "A549",
    "adamson": "K562",
    "replogle_k562_essential": "K562",
    "replogle_rpe1_essential": "rpe1",
}
MODALITY = {
    "norman2019": "CRISPRa",
    "norman2019_gears": "CRISPRa",
    "adamson": "CRISPRi",
    "replogle_k562_essential": "CRISPRi",
    "replogle_rpe1_essential": "CRISPRi",
}
# the paper (Fig. 2c: P from the other Replogle screen; method_spec section 1.1: singles
# after GEARS' GO filter), in the old published.TRANSFER_SOURCE order
TRANSFER_SOURCE = {
    "adamson": "replogle_k562_essential",
    "replogle_rpe1_essential": "replogle_k562_essential",
    "replogle_k562_essential": "replogle_rpe1_essential",
}
PAPER_SINGLES = {
    "adamson": 81,
    "replogle_k562_essential": 1087,
    "replogle_rpe1_essential": 1534,
}
# control labels: perturbench's "control", GEARS' "ctrl", the genome-wide K562 file's
# "non-targeting" (old scale.standins.GWPS), Tahoe's "DMSO_TF" (old scale.tahoe.TAHOE)
CONTROL = {
    "norman2019_subset": "control",
    "norman2019": "ctrl",
    "norman2019_gears": "ctrl",
    "adamson": "ctrl",
    "replogle_k562_essential": "ctrl",
    "replogle_rpe1_essential": "ctrl",
    "replogle_k562_gwps": "non-targeting",
    "tahoe100m_shard": "DMSO_TF",
}
# the old helpers.standins.SCALES
SCALES = {
    "full": {
        "norman2019": dict(
            n_cells=84_986, n_genes=19_264, n_singles=101, n_doubles=125
        ),
        "norman2019_gears": dict(
            n_cells=91_205, n_genes=5_045, n_singles=101, n_doubles=125
        ),
        "adamson": dict(n_cells=65_899, n_genes=5_060, n_singles=82),
        "replogle_k562_essential": dict(
            n_cells=162_264, n_genes=5_000, n_singles=1_088
        ),
        "replogle_rpe1_essential": dict(
            n_cells=161_423, n_genes=5_000, n_singles=1_535
        ),
    },
    "small": {
        "norman2019": dict(n_cells=2_400, n_genes=600, n_singles=101, n_doubles=125),
        "norman2019_gears": dict(
            n_cells=2_400, n_genes=400, n_singles=101, n_doubles=125
        ),
        "adamson": dict(n_cells=1_000, n_genes=300, n_singles=82),
        "replogle_k562_essential": dict(n_cells=2_000, n_genes=400, n_singles=361),
        "replogle_rpe1_essential": dict(n_cells=2_600, n_genes=400, n_singles=505),
    },
}


def test_records_hold_the_facts_the_old_tables_held():
    registry = data.load_registry()
    assert {n: e.label for n, e in registry.items() if e.label} == LABELS
    assert {n: registry[n].file_cell_type for n in FILE_CELL_TYPE} == FILE_CELL_TYPE
    assert {n: registry[n].modality for n in MODALITY} == MODALITY
    assert {n: registry[n].control_label for n in CONTROL} == CONTROL
    assert {
        n: e.paper_n_singles
        for n, e in registry.items()
        if e.paper_n_singles is not None
    } == PAPER_SINGLES
    assert registry["norman2019_gears"].counts_layer
    assert not any(
        e.counts_layer for n, e in registry.items() if n != "norman2019_gears"
    )
    assert registry["replogle_rpe1_essential"].cell_line == "RPE1"


def test_the_old_tables_are_views_of_the_records():
    from helpers.scale.standins import GWPS
    from helpers.scale.tahoe import TAHOE

    assert profiles._LABELS == LABELS
    assert all(profiles.dataset_label(n) == label for n, label in LABELS.items())
    assert list(published.TRANSFER_SOURCE.items()) == list(TRANSFER_SOURCE.items())
    assert published.PAPER_SINGLE_DATASETS == PAPER_SINGLES
    assert standins.SCALES == SCALES
    assert GWPS["control"] == "non-targeting" and TAHOE["control"] == "DMSO_TF"
    assert GWPS["size"] == 65_830_941_948
    assert standins.GEARS_NAMES == {
        "norman2019_gears": "norman",
        "adamson": "adamson",
        "replogle_k562_essential": "replogle_k562_essential",
        "replogle_rpe1_essential": "replogle_rpe1_essential",
    }


def _one_entry(tmp_path, extra: str) -> Path:
    path = tmp_path / "registry.toml"
    path.write_text(
        '[x]\nurl = "https://example.org/x"\nfilename = "x.h5ad"\n'
        f'format = "h5ad"\n{extra}\n'
    )
    return path


@pytest.mark.parametrize(
    "extra, words",
    [
        ('colour = "red"', ["'x'", "unknown field 'colour'", "fix its spelling"]),
        ('paper_n_singles = "81"', ["'x'", "'paper_n_singles'", "write a int"]),
        ('modality = "CRISPRx"', ["'x'", "'modality'", "CRISPRa, CRISPRi, drug"]),
        (
            'transfer_source = "nowhere"',
            ["'x'", "transfer_source 'nowhere'", "name one of x"],
        ),
        ("standin_small = { n_cells = 10 }", ["'x'", "'standin_small'", "n_genes"]),
        ("counts_layer = 1", ["'x'", "'counts_layer'", "bool"]),
    ],
)
def test_an_invalid_field_is_one_line_naming_entry_field_and_fix(
    tmp_path, extra, words
):
    with pytest.raises(data.DataError) as err:
        data.load_registry(_one_entry(tmp_path, extra))
    message = str(err.value)
    assert "\n" not in message and isinstance(err.value, BookError)
    for word in words:
        assert word in message


def test_an_unknown_layout_is_one_line_listing_the_known_ones():
    with pytest.raises(loaders.LoaderError) as err:
        loaders.get_layout("nope")
    message = str(err.value)
    assert "\n" not in message
    for name in (
        "gears",
        "perturbench",
        "scfoundation",
        "replogle_gwps",
        "tahoe_parquet",
    ):
        assert name in message


def test_a_registered_layout_reads_a_registry_entry(tmp_path, monkeypatch):
    """The protocol: a reader registered under a name reads every entry with that
    layout."""
    (tmp_path / "toy.h5ad").write_bytes(b"\x89HDF\r\n\x1a\n" + b"0" * 64)
    registry = tmp_path / "registry.toml"
    registry.write_text(
        '[toy]\nurl = "https://example.org/toy"\nfilename = "toy.h5ad"\n'
        'format = "h5ad"\nlayout = "toy_layout"\n'
    )
    cache = tmp_path / "cache"
    data.seed_cache(
        tmp_path / "toy.h5ad", cache=cache, registry=data.load_registry(registry)
    )
    monkeypatch.setenv(data.REGISTRY_ENV, str(registry))
    calls = []

    def reader(path, entry, /, **options):
        calls.append((path.name, entry.name, options["backed"]))
        return "read"

    monkeypatch.setitem(
        loaders.LAYOUTS, "toy_layout", loaders.Layout("toy_layout", reader)
    )
    assert (
        loaders.load_dataset("toy", cache=cache, backed="r", download=False) == "read"
    )
    assert calls == [("toy.h5ad", "toy", "r")]


def test_a_lazy_layout_is_refused_by_the_in_memory_loader_with_the_way_out():
    with pytest.raises(
        loaders.LoaderError, match=r"load_screen\('replogle_k562_gwps'\)"
    ):
        loaders.load_dataset("replogle_k562_gwps", download=False)


# --------------------------------------------------------------------------------------
# adding a dataset in an existing layout: one file

NEW_ENTRY = """
[toy_screen]
description = "A tiny CRISPRi screen in GEARS' layout (test)."
url = "https://example.org/toy_screen.zip"
filename = "toy_screen.zip"
format = "zip"
member = "toy_screen/perturb_processed.h5ad"
layout = "gears"
normalisation = "log1p"
label = "Toy screen 2026 (test)"
cell_line = "HEK293T"
file_cell_type = "HEK293T"
modality = "CRISPRi"
control_label = "ctrl"
transfer_source = "adamson"
benchmark = "singles"
standin_small = { n_cells = 120, n_genes = 20, n_singles = 4 }
kind = "dataset"
"""

SCRIPT = """
import json, sys
from pathlib import Path
from helpers import data, loaders, profiles, standins
from helpers.benchmark import tasks

folder = Path(sys.argv[1])
conditions = ["ctrl", "AAA1+ctrl", "BBB2+ctrl", "ctrl+CCC3", "DDD4+ctrl"]
written = standins.write_standins(
    folder / "files", scale="small", datasets=["toy_screen"],
    overrides={"toy_screen": {"conditions": conditions}})
table = data.seed_cache(folder / "files" / "toy_screen.zip")
adata = loaders.load_dataset("toy_screen", download=False)
print(json.dumps({
    "seeded": table.set_index("dataset")["status"].to_dict(),
    "conditions": sorted(map(str, adata.obs["condition"].unique())),
    "cell_line": sorted(map(str, adata.obs["cell_line"].unique())),
    "layout": adata.uns["perturbbook"]["layout"],
    "n_obs": adata.n_obs,
    "label": profiles.dataset_label("toy_screen"),
    "scales": standins.SCALES["small"].get("toy_screen"),
    "tasks": list(tasks.list_tasks()["task"]),
    "task_other": tasks.get_entry("toy_screen").transfer_source,
}))
"""


def test_adding_a_dataset_in_an_existing_layout_touches_the_registry_only(tmp_path):
    registry = tmp_path / "registry.toml"
    shutil.copy(ROOT / "data" / "registry.toml", registry)
    with open(registry, "a") as fh:
        fh.write(NEW_ENTRY)
    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT),
        PERTURBBOOK_REGISTRY=str(registry),
        PERTURBBOOK_CACHE=str(tmp_path / "cache"),
    )
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["seeded"] == {"toy_screen": "seeded"}
    # the loader: GEARS spelling -> canonical conditions, the file's cell type as the
    # cell line
    assert out["conditions"] == ["AAA1", "BBB2", "CCC3", "DDD4", "ctrl"]
    assert out["cell_line"] == ["HEK293T"] and out["layout"] == "gears"
    assert out["n_obs"] == 120
    assert out["label"] == "Toy screen 2026 (test)"
    assert out["scales"] == {"n_cells": 120, "n_genes": 20, "n_singles": 4}
    assert "toy_screen_singles" in out["tasks"]
    assert out["tasks"].index("toy_screen_singles") > out["tasks"].index(
        "replogle_rpe1_essential_singles"
    )
    assert out["task_other"] == "adamson"


def test_a_new_entry_in_a_lazy_layout_is_read_by_load_screen(tmp_path, monkeypatch):
    """A second genome-wide file (layout replogle_gwps) in the registry only: read
    lazily, its control label from its own record."""
    from helpers.scale.loaders import load_screen
    from helpers.scale.standins import write_replogle_gwps_standin

    path = write_replogle_gwps_standin(
        tmp_path / "gw2.h5ad", n_cells=300, n_genes=30, n_perturbations=4, dense=False
    )
    registry = tmp_path / "registry.toml"
    shutil.copy(ROOT / "data" / "registry.toml", registry)
    with open(registry, "a") as fh:
        fh.write(
            '\n[gw2]\nurl = "https://example.org/gw2.h5ad"\nfilename = "gw2.h5ad"\n'
            'format = "h5ad"\nlayout = "replogle_gwps"\ncontrol_label = '
            '"non-targeting"\ncondition_column = "gene"\n'
        )
    monkeypatch.setenv(data.REGISTRY_ENV, str(registry))
    cache = tmp_path / "cache"
    assert set(data.seed_cache(path, cache=cache)["status"]) == {"seeded"}
    screen = load_screen("gw2", cache=cache, chunk_rows=64)
    assert screen.dataset == "gw2"
    gene = screen.obs["gene"].astype(str)
    assert ((gene == "non-targeting") == (screen.obs["condition"] == "ctrl")).all()
    assert (screen.obs["condition"] == "ctrl").any()
    with pytest.raises(BookError, match="read into memory"):
        load_screen("adamson", cache=cache)
