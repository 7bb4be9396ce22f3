"""Tiny in-memory AnnData in GEARS' layout for unit tests of the loaders and pseudobulk.

Files in the full real layouts (zips, uns DE dicts, counts layer, any scale) come from
:mod:`helpers.standins`.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

GENES = ["KLF1", "MAP2K6", "CEBPB", "CEBPE", "HBG2", "GAPDH", "TMSB4X", "HBZ"]
CONDITIONS = [
    "ctrl",
    "KLF1+ctrl",
    "ctrl+MAP2K6",
    "CEBPE+ctrl",
    "CEBPB+ctrl",
    "KLF1+MAP2K6",
    "CEBPE+CEBPB",
]


def make_gears_adata(
    n_per_condition: int = 12, dense: bool = False, seed: int = 0
) -> ad.AnnData:
    """An AnnData shaped like GEARS' files: obs condition / cell_type / condition_name
    / dose_val / control, var index = Ensembl-like ids with symbols in
    var['gene_name'], X = log1p-normalised CSR float32."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(CONDITIONS, n_per_condition)
    counts = rng.poisson(3.0, size=(len(labels), len(GENES))).astype(np.float32)
    X = np.log1p(counts / np.maximum(counts.sum(1, keepdims=True), 1) * 1e4).astype(
        np.float32
    )
    obs = pd.DataFrame(
        {
            "condition": pd.Categorical(labels),
            "cell_type": "K562",
            # GEARS data_utils.get_DE_genes: two '+' parts (also 'A+ctrl') -> dose '1+1'
            # and control 0
            "dose_val": ["1+1" if len(c.split("+")) == 2 else "1" for c in labels],
            "control": [0 if len(c.split("+")) == 2 else 1 for c in labels],
            "condition_name": [
                f"K562_{c}_{'1+1' if len(c.split('+')) == 2 else '1'}" for c in labels
            ],
        },
        index=[f"cell{i}" for i in range(len(labels))],
    )
    var = pd.DataFrame(
        {"gene_name": GENES}, index=[f"ENSG{i:011d}" for i in range(len(GENES))]
    )
    return ad.AnnData(X=X if dense else sp.csr_matrix(X), obs=obs, var=var)
