"""The paper profile runs end to end offline on stand-ins in the real files' layouts.

The real files (figshare 44477939, a zip holding scFoundation's Norman h5ad; GEARS'
Dataverse zips; GEARS' GO gene pickles) cannot be downloaded here.
:mod:`helpers.standins` writes small files in exactly their layouts (zip member paths,
sparse X, Ensembl var index with symbols in ``var['gene_name']``, uns DE dictionaries,
counts layer, targets missing from Replogle's HVGs, GEARS condition spellings, dummy
cell type) with the real condition names wherever the paper published them. They are
seeded into a temporary cache through ``helpers.data.seed_cache`` - the path a reader
takes - and the chapters are executed with ``profile="paper"``. The numbers they produce
are meaningless (random values); what is tested is the code path from the registry to
the tables.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from helpers import data, standins

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def paper_cache(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("paper_profile")
    source, cache = root / "src", root / "cache"
    standins.write_standins(
        source,
        scale="small",
        datasets=(
            "norman2019",
            "adamson",
            "replogle_k562_essential",
            "replogle_rpe1_essential",
        ),
    )
    table = data.seed_cache(source, cache=cache)
    assert set(table["status"]) == {"seeded"} and len(table) == 6
    # the published spreadsheets come from the real cache, seeded like any dataset
    # (and chapter 5's annotation packages)
    for name in [
        "paper_perturbation_prediction",
        "paper_single_perturbation_prediction",
        "org_hs_eg_db",
        "go_db",
    ]:
        data.fetch(
            name, progressbar=False
        )  # verified in the book's cache (a deb returns its member)
        filename = data.get_entry(name).filename
        shutil.copyfile(data.cache_dir() / filename, cache / filename)
    return cache


@pytest.mark.parametrize(
    "notebook",
    [
        "01_data",
        "02_double_perturbations",
        "03_linear_model",
        "04_foundation_models",
        "05_embeddings",
        "06_interactions",
        "07_your_model",
        "09_since_the_paper",
    ],
)
def test_chapter_runs_on_the_paper_profile(
    notebook, paper_cache, tmp_path, monkeypatch
):
    import papermill as pm

    results = tmp_path / "results"
    monkeypatch.setenv(data.CACHE_ENV, str(paper_cache))
    monkeypatch.setenv("PERTURBBOOK_RESULTS", str(results))
    parameters = {"profile": "paper"}
    if notebook == "05_embeddings":
        # the paper profile requires an explicit checkpoint folder in the released
        # layout: no real scGPT_human here, so a one-epoch checkpoint of the book's tiny
        # transformer pretrained on the Adamson stand-in (the chapter recognises it as
        # the book's model and names its rows accordingly)
        from helpers import loaders
        from helpers.models import scgpt

        adamson = loaders.load_dataset("adamson")
        parameters["scgpt_checkpoint"] = str(
            scgpt.pretrain_tiny_checkpoint(
                adamson, tmp_path / "tiny_checkpoint", epochs=1
            )[0]
        )
    if notebook == "04_foundation_models":
        # a GPU chapter, run here on CPU with tiny settings: what is tested is the path
        # from the real layouts (the Norman zip, the released scGPT_human folder layout,
        # the paper's splits, GEARS) to the tables. The checkpoint: helpers.standins'
        # scGPT_human layout, shrunk, vocabulary = the stand-in's genes.
        from helpers import loaders
        from helpers.conditions import condition_genes

        norman = loaders.load_dataset("norman2019", backed="r")
        conditions = norman.obs["condition"].astype(str).unique()
        genes = [
            *map(str, norman.var_names),
            *{g for c in conditions for g in condition_genes(c)},
        ]
        standins.write_scgpt_checkpoint(
            tmp_path / "scGPT_human",
            genes,
            n_tokens=None,
            embsize=16,
            nheads=2,
            d_hid=32,
            nlayers=2,
        )
        parameters |= {
            "checkpoint_dir": str(tmp_path / "scGPT_human"),
            "epochs": 1,
            "gears_epochs": 1,
            "cpa_epochs": 2,
            "max_seq_len": 64,
            "max_cells_per_condition": 8,
            "pool_size": 8,
        }
    pm.execute_notebook(
        str(ROOT / "notebooks" / f"{notebook}.ipynb"),
        str(tmp_path / "out.ipynb"),
        parameters=parameters,
        cwd=str(ROOT / "notebooks"),
        kernel_name="python3",
        progress_bar=False,
    )
    tables = {p.stem: pd.read_csv(p) for p in (results / notebook).glob("*.csv")}
    assert tables, "the chapter wrote no tables"
    if notebook == "02_double_perturbations":
        ours = tables["per_perturbation_metrics"]
        real = ours[ours["dataset"] == "norman2019"]
        assert sorted(real["seed"].unique()) == [1, 2, 3, 4, 5]
        assert (
            real.groupby(["method", "seed"]).size() == 62
        ).all()  # the paper's 62 held-out doubles per seed
        assert {
            "dataset",
            "method",
            "seed",
            "split",
            "condition",
            "l2",
            "pearson_delta",
        } <= set(ours.columns)
    elif notebook == "03_linear_model":
        ours = tables["per_perturbation_metrics"]
        assert set(ours["dataset"]) == {
            "adamson",
            "replogle_k562_essential",
            "replogle_rpe1_essential",
        }
        assert {"mean", "linear", "linear_P_other_screen"} <= set(ours["method"])
        assert set(tables["published_forest"]["source"]) == {"published"}
    elif notebook == "04_foundation_models":
        ours = tables["per_perturbation_metrics"]
        assert {"scgpt_human_book", "gears", "additive", "no_change"} <= set(
            ours["method"]
        )
        # the paper's split at seed 1 after the GO filter: 31 test + 31 validation
        # doubles scored
        assert ours.loc[ours["method"] == "additive", "condition"].nunique() == 62
    elif notebook == "05_embeddings":
        ours = tables["per_perturbation_metrics"]
        assert set(ours["dataset"]) == {
            "adamson",
            "replogle_k562_essential",
            "replogle_rpe1_essential",
        }
    elif notebook == "06_interactions":
        observed = tables["observed_deviations"]
        assert (observed["dataset"] == "norman2019").all()
        # GEARS' GO filter leaves 124 doubles; LYL1+IER5L is not among them
        assert observed["condition"].nunique() == 124 and "LYL1+IER5L" not in set(
            observed["condition"]
        )
        assert "this book" in set(tables["empirical_null"]["source"])
    elif notebook == "07_your_model":
        board = tables["leaderboard"]
        assert (
            "knn" in set(board["method"])
            and (board["dataset"] == "replogle_k562_essential").all()
        )
        assert "published" in set(
            board["source"]
        )  # the paper's own partitions: rows compare one to one
    elif notebook == "09_since_the_paper":
        ours = tables["metrics_norman_doubles"]
        assert sorted(ours["seed"].unique()) == [1, 2, 3, 4, 5]
        assert (ours[ours["method"] == "additive"].groupby("seed").size() == 62).all()
        families = [
            "pearson_delta_perturbed_mean",
            "centroid_accuracy",
            "weighted_mse",
            "r2_delta_weighted",
            "mae",
            "discrimination_score_l1",
            "de_overlap_vcc",
        ]
        assert set(families) <= set(ours.columns)
        assert ours.loc[ours["method"] == "additive", families].notna().all().all()
        for name in ("adamson", "replogle_k562_essential", "replogle_rpe1_essential"):
            assert {"mean", "linear"} <= set(
                tables[f"metrics_{name}_singles"]["method"]
            )
        assert len(tables["conclusions"])
    else:
        conditions = tables["conditions"]
        assert (conditions["dataset"] == "norman2019").all()
        assert conditions["kind"].value_counts().to_dict() == {
            "double": 124,
            "single": 100,
            "control": 1,
        }


def test_chapter_8_says_it_has_no_paper_profile(tmp_path):
    """Chapter 8 exists in the quick profile only: profile="paper" stops at once with
    that message instead of quietly running on the Norman subset."""
    import papermill as pm

    with pytest.raises(pm.PapermillExecutionError, match="has no 'paper' profile"):
        pm.execute_notebook(
            str(ROOT / "notebooks" / "08_beyond_the_paper.ipynb"),
            str(tmp_path / "out.ipynb"),
            parameters={"profile": "paper"},
            cwd=str(ROOT / "notebooks"),
            kernel_name="python3",
            progress_bar=False,
        )
