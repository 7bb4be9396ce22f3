"""Canonical loading: the real Norman subset and files in GEARS' layout."""

from __future__ import annotations

import zipfile

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from helpers import data, loaders
from helpers.loaders import LoaderError, normalize_condition

from .conftest import write_registry
from .gears_layout import make_gears_adata


@pytest.mark.parametrize(
    "label, expected",
    [("control", "ctrl"), ("ctrl", "ctrl"), ("KLF1+ctrl", "KLF1"), ("ctrl+KLF1", "KLF1"), ("KLF1", "KLF1"),
     ("CEBPE+CEBPB", "CEBPE+CEBPB"), (" non-targeting ", "ctrl"), ("ctrl+ctrl", "ctrl")],
)
def test_normalize_condition(label, expected):
    assert normalize_condition(label) == expected


@pytest.mark.parametrize("label", ["KLF1+", "+KLF1", "A++B", "KLF1+KLF1"])
def test_malformed_conditions_are_errors(label):
    with pytest.raises(LoaderError, match="Malformed condition label"):
        normalize_condition(label)


def test_real_norman_subset_is_canonical(norman_subset):
    adata = norman_subset
    assert adata.shape == (3375, 500)
    assert set(adata.obs["dataset"]) == {"norman19"}  # the other screen in the file is dropped
    table = loaders.condition_table(adata)
    assert table["kind"].value_counts().to_dict() == {"control": 1, "single": 18, "double": 15}
    assert table.set_index("condition").loc["ctrl", "n_cells"] == 100
    assert adata.obs["condition"].cat.categories[0] == "ctrl"
    assert {"KLF1", "KLF1+MAP2K6", "MAP2K3+SLC38A2"} <= set(adata.obs["condition"])
    assert (adata.obs.loc[adata.obs["condition"] == "ctrl", "condition_source"] == "control").all()
    assert adata.obs["n_targets"].max() == 2
    assert set(adata.obs["cell_line"]) == {"K562"}
    assert "TMSB4X" in adata.var_names and adata.var_names.is_unique
    assert sp.isspmatrix_csr(adata.X) and adata.X.dtype == np.float32
    meta = adata.uns["perturbbook"]
    assert meta["dataset"] == "norman2019_subset" and meta["has_counts"] is False
    assert "log1p" in meta["normalisation"]


def test_gears_layout_file(tmp_path):
    path = tmp_path / "perturb_processed.h5ad"
    make_gears_adata().write_h5ad(path)
    adata = loaders.read_gears(path, dataset="toy_gears", normalisation="log1p")
    assert list(adata.var_names[:3]) == ["KLF1", "MAP2K6", "CEBPB"]
    assert adata.var["source_var_name"].iloc[0].startswith("ENSG")
    assert set(adata.obs["condition"]) == {"ctrl", "KLF1", "MAP2K6", "CEBPE", "CEBPB", "KLF1+MAP2K6", "CEBPE+CEBPB"}
    assert set(adata.obs.loc[adata.obs["condition"] == "MAP2K6", "condition_source"]) == {"ctrl+MAP2K6"}
    assert adata.uns["perturbbook"]["layout"] == "gears"
    assert set(adata.obs["cell_line"]) == {"K562"}


def test_gears_layout_backed_keeps_X_on_disk(tmp_path):
    path = tmp_path / "perturb_processed.h5ad"
    make_gears_adata(dense=True).write_h5ad(path)
    adata = loaders.read_gears(path, dataset="toy_gears", backed="r")
    assert adata.isbacked
    assert adata.obs["condition"].iloc[-1] == "CEBPE+CEBPB"
    assert adata.var_names[0] == "KLF1"


def test_load_dataset_end_to_end_from_a_dataverse_style_zip(tmp_path, http_server, monkeypatch):
    """Registry -> download -> zip member -> canonical AnnData, with the real GEARS folder layout."""
    served, base, _ = http_server
    inner = tmp_path / "perturb_processed.h5ad"
    make_gears_adata().write_h5ad(inner)
    with zipfile.ZipFile(served / "datafile", "w") as zf:
        zf.write(inner, "norman/perturb_processed.h5ad")
    registry_path = tmp_path / "reg.toml"
    write_registry(registry_path, {
        "norman2019_gears": {"url": f"{base}/datafile", "filename": "norman.zip", "format": "zip",
                             "member": "norman/perturb_processed.h5ad", "layout": "gears",
                             "normalisation": "normalize_total + log1p"},
    })
    monkeypatch.setenv(data.REGISTRY_ENV, str(registry_path))
    adata = loaders.load_dataset("norman2019_gears", cache=tmp_path / "cache")
    assert adata.uns["perturbbook"]["dataset"] == "norman2019_gears"
    assert "KLF1+MAP2K6" in set(adata.obs["condition"])


def test_missing_condition_column_is_a_clear_error(tmp_path):
    adata = make_gears_adata()
    del adata.obs["condition"]
    path = tmp_path / "x.h5ad"
    adata.write_h5ad(path)
    with pytest.raises(LoaderError, match="not in GEARS layout, obs lacks 'condition'"):
        loaders.read_gears(path, dataset="x")


def test_file_without_control_cells_is_rejected():
    adata = make_gears_adata()
    adata = adata[adata.obs["condition"] != "ctrl"].copy()
    with pytest.raises(LoaderError, match="no control cells"):
        loaders.canonicalize(adata, condition_key="condition", dataset="x", layout="gears", normalisation="")


def test_duplicate_symbols_are_made_unique_and_counted():
    adata = make_gears_adata()
    adata.var["gene_name"] = ["A", "A", "B", "C", "D", "E", "F", "G"]
    adata = loaders.canonicalize(adata, condition_key="condition", dataset="x", layout="gears",
                                 normalisation="", gene_symbol_key="gene_name")
    assert adata.var_names.is_unique and adata.uns["perturbbook"]["duplicated_gene_symbols_made_unique"] == 1


def test_load_dataset_rejects_non_datasets():
    with pytest.raises(LoaderError, match="not a dataset with a known layout"):
        loaders.load_dataset("paper_perturbation_prediction")


def test_condition_table_orders_control_singles_doubles(norman_subset):
    table = loaders.condition_table(norman_subset)
    assert list(table["kind"].iloc[[0, 1, -1]]) == ["control", "single", "double"]
    assert table["n_cells"].sum() == norman_subset.n_obs
    assert isinstance(table, pd.DataFrame)
