"""Read a folder with the REAL cpa-tools and predict: checks that a folder the book
wrote (``helpers.models.cpa.CPAModel.save``) is one cpa-tools reads.

Run inside the side environment of ``scripts/make_cpa_venv.sh``::

    .venv-cpa/bin/python tests/parity/cpa_load_check.py FOLDER SCREEN_H5AD X_NPY OUT_NPY

Sets the screen up as ``cpa_oracle.py`` (and the paper's ``run_cpa.py``) does, loads
FOLDER with ``CPA.load``, replaces X by the control counts in X_NPY and writes
``CPA.predict``'s ``obsm["CPA_pred"]`` to OUT_NPY.
"""

import sys

import anndata as ad
import numpy as np


def main(folder, screen, x_path, out_path):
    import cpa

    adata = ad.read_h5ad(screen)
    cpa.CPA.setup_anndata(
        adata,
        perturbation_key="condition_harm",
        control_group="ctrl",
        dosage_key="dose_val",
        smiles_key="smiles",
        is_count_data=True,
        categorical_covariate_keys=[],
        max_comb_len=2,
    )
    model = cpa.CPA.load(folder, adata=adata, use_gpu=False)
    adata.X = np.load(x_path)
    model.predict(adata, batch_size=2048)
    np.save(out_path, np.asarray(adata.obsm["CPA_pred"]))


if __name__ == "__main__":
    main(*sys.argv[1:5])
