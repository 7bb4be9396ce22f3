"""The paper profile runs end to end offline on a stand-in file in the published layout.

The real full Norman file (figshare, ~7 GB) and GEARS' Dataverse zips cannot be downloaded here. This
test writes small files with the same layout (GEARS-style conditions `A+ctrl` / `A+B` / `ctrl`, symbols in var['gene_name'],
dense X) and the real condition names of the paper's held-out doubles, seeds it into a temporary
cache under the registry name `norman2019`, and executes the chapters with profile="paper".
The numbers it produces are meaningless (random data); what is tested is the code path.
"""

from __future__ import annotations

import os
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from helpers import data, published

ROOT = Path(__file__).resolve().parents[1]


def write_standin(path: Path, seed: int = 0) -> None:
    doubles = sorted(published.double_metrics()["condition"].unique())
    singles = sorted({g for d in doubles for g in d.split("+")})
    conditions = ["ctrl", *[f"{s}+ctrl" for s in singles], *doubles]
    genes = [*singles, *[f"FILLER{i}" for i in range(1100 - len(singles))]]
    rng = np.random.default_rng(seed)
    labels = np.repeat(conditions, 6)
    X = np.log1p(rng.poisson(rng.gamma(0.5, 2.0, len(genes)), size=(len(labels), len(genes)))).astype(np.float32)
    # a few strong non-additive entries per double, so that interactions exist to be found
    for double in doubles:
        rows = np.flatnonzero(labels == double)
        cols = rng.choice(len(genes), 15, replace=False)
        X[np.ix_(rows, cols)] += 2.0
    obs = pd.DataFrame({"condition": pd.Categorical(labels), "cell_type": "K562"},
                       index=[f"c{i}" for i in range(len(labels))])
    var = pd.DataFrame({"gene_name": genes}, index=[f"ENSG{i:011d}" for i in range(len(genes))])
    ad.AnnData(X=X, obs=obs, var=var).write_h5ad(path)


def write_single_standins(folder: Path, seed: int = 0) -> None:
    """Dataverse-style zips (``<name>/perturb_processed.h5ad``) for the three single-perturbation screens."""
    import zipfile

    rng = np.random.default_rng(seed)
    pool = [f"GENE{i}" for i in range(90)]
    for name, start in [("adamson", 0), ("replogle_k562_essential", 10), ("replogle_rpe1_essential", 20)]:
        targets = pool[start:start + 60]
        genes = [*targets, *[f"FILLER{i}" for i in range(300)]]
        labels = np.repeat(["ctrl", *[f"{t}+ctrl" for t in targets]], 8)
        X = np.log1p(rng.poisson(2.0, size=(len(labels), len(genes)))).astype(np.float32)
        obs = pd.DataFrame({"condition": pd.Categorical(labels), "cell_type": name.split("_")[-2] if "_" in name else "K562"},
                           index=[f"c{i}" for i in range(len(labels))])
        var = pd.DataFrame({"gene_name": genes}, index=[f"ENSG{i:011d}" for i in range(len(genes))])
        h5 = folder / f"{name}.h5ad"
        ad.AnnData(X=X, obs=obs, var=var).write_h5ad(h5)
        entry = data.get_entry(name)
        with zipfile.ZipFile(folder / entry.filename, "w") as zf:
            zf.write(h5, entry.member)
        h5.unlink()


@pytest.mark.parametrize("notebook", ["01_data", "02_double_perturbations", "03_linear_model", "06_interactions", "07_your_model"])
def test_chapter_runs_on_the_paper_profile(notebook, tmp_path, monkeypatch):
    import papermill as pm

    cache, results = tmp_path / "cache", tmp_path / "results"
    source = tmp_path / "src"
    source.mkdir()
    write_standin(source / data.get_entry("norman2019").filename)
    write_single_standins(source)
    table = data.seed_cache(source, cache=cache)
    assert set(table["status"]) == {"seeded"} and len(table) == 4
    # the published spreadsheets come from the real cache, seeded like any dataset
    for name in ["paper_perturbation_prediction", "paper_single_perturbation_prediction"]:
        target = cache / data.get_entry(name).filename
        target.write_bytes(data.fetch(name, progressbar=False).read_bytes())
    monkeypatch.setenv(data.CACHE_ENV, str(cache))
    monkeypatch.setenv("PERTURBBOOK_RESULTS", str(results))
    pm.execute_notebook(str(ROOT / "notebooks" / f"{notebook}.ipynb"), str(tmp_path / "out.ipynb"),
                        parameters={"profile": "paper"}, cwd=str(ROOT / "notebooks"), kernel_name="python3",
                        progress_bar=False)
    tables = {p.stem: pd.read_csv(p) for p in (results / notebook).glob("*.csv")}
    assert tables, "the chapter wrote no tables"
    if notebook == "02_double_perturbations":
        ours = tables["per_perturbation_metrics"]
        real = ours[ours["dataset"] == "norman2019"]
        assert sorted(real["seed"].unique()) == [1, 2, 3, 4, 5]
        assert (real.groupby(["method", "seed"]).size() == 62).all()  # the paper's 62 held-out doubles per seed
        assert {"dataset", "method", "seed", "split", "condition", "l2", "pearson_delta"} <= set(ours.columns)
    elif notebook == "03_linear_model":
        ours = tables["per_perturbation_metrics"]
        assert set(ours["dataset"]) == {"adamson", "replogle_k562_essential", "replogle_rpe1_essential"}
        assert {"mean", "linear", "linear_P_other_screen"} <= set(ours["method"])
        assert set(tables["published_forest"]["source"]) == {"published"}
    elif notebook == "06_interactions":
        observed = tables["observed_deviations"]
        assert (observed["dataset"] == "norman2019").all() and observed["condition"].nunique() > 100
        assert set(tables["empirical_null"]["source"]) == {"this book", "published (first version of the paper)"}
    elif notebook == "07_your_model":
        board = tables["leaderboard"]
        assert "knn" in set(board["method"]) and (board["dataset"] == "replogle_k562_essential").all()
        assert "published (other split)" in set(board["source"])
    else:
        assert (tables["conditions"]["dataset"] == "norman2019").all()
