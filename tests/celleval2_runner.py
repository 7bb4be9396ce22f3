"""Runs cell-eval2's own metric functions on h5ad files; executed by the peer's python.

Not a test module and not imported by the book:
``tests/parity/test_parity_celleval2.py`` and ``tests/parity/test_beyond_celleval.py``
call it in the cell-eval2 environment (``.venv-celleval``,
``scripts/make_celleval_venv.sh``) as ``python celleval2_runner.py JOB.json`` and read
one JSON line from stdout. Each job names the peer function it calls:

* ``legacy``: ``norm.validate_input_type`` on both files (the refusal of negative
  values), then ``metrics.mse`` and ``metrics.pearson_delta`` (v1: the predicted
  control);
* ``vcc``: ``metrics.mae``; ``metrics.discrimination_score`` with ``distance="l1"`` and
  the ``EvalConfig()`` (v2) defaults of ``DiscriminationParams`` except the distance;
  and, for the DE overlap, ``de_compute.compute_de`` (scanpy backend, log-normalised
  input, v2 ``DEParams``) on the real and on the predicted cells, then
  ``metrics.de.de_overlap(k=None)``.
"""

import json
import sys
import warnings

warnings.simplefilter("ignore")

import anndata as ad  # noqa: E402
from cell_eval2.config import DEParams, EvalConfig, FilterParams  # noqa: E402

PERT, CONTROL = "target_gene", "non-targeting"


def legacy(job):
    """``job["preds"]``: {name: h5ad}; one result per name."""
    real = ad.read_h5ad(job["real"])
    return {
        name: legacy_one(real, ad.read_h5ad(path))
        for name, path in job["preds"].items()
    }


def legacy_one(real, pred):
    from cell_eval2.metrics import mse, pearson_delta
    from cell_eval2.norm import validate_input_type

    try:
        for side in (real, pred):
            validate_input_type(side, "lognorm")
    except ValueError as err:
        return {"error": str(err)}
    kw = dict(pert_col=PERT, control=CONTROL)
    return {
        "mse": mse(pred, real, **kw),
        "pearson_delta": pearson_delta(pred, real, control_source="pred", **kw),
    }


def vcc(job):
    """``job["methods"]``: {name: {"pred": ..., "pred_cells": ...}} (h5ad paths)."""
    from cell_eval2.de_compute import compute_de

    real = ad.read_h5ad(job["real"])
    de, filt, cfg = DEParams(), FilterParams(), EvalConfig()

    def de_of(cells):
        return compute_de(
            cells,
            backend="scanpy",
            groupby=PERT,
            reference=CONTROL,
            mean_calc=de.mean_calc,
            epsilon=de.epsilon,
            input_type="lognorm",
            target_sum=cfg.target_sum,
            clip_value=de.clip_value,
            filter_gene_min_cpm_cell=filt.filter_gene_min_cpm_cell,
            fdr_scope=de.fdr_scope,
            threads=1,
        )

    real_de = de_of(real)
    return {
        name: vcc_one(
            job,
            real,
            real_de,
            ad.read_h5ad(paths["pred"]),
            de_of(ad.read_h5ad(paths["pred_cells"])),
        )
        for name, paths in job["methods"].items()
    }


def vcc_one(job, real, real_de, pred, pred_de):
    from cell_eval2.metrics import discrimination_score, mae
    from cell_eval2.metrics.de import de_overlap

    cfg = EvalConfig()  # the v2 defaults that cell-eval2 documents and runs
    disc = cfg.discrimination
    kw = dict(pert_col=PERT, control=CONTROL)
    out = {
        "config": {
            "control_source": cfg.control_source,
            "rank_denominator": disc.rank_denominator,
            "tie_policy": disc.tie_policy,
            "exclusion_scope": disc.exclusion_scope,
        }
    }
    out["mae"] = mae(pred, real, **kw)
    out["discrimination_score_l1"] = discrimination_score(
        pred,
        real,
        distance="l1",
        rank_denominator=disc.rank_denominator,
        tie_policy=disc.tie_policy,
        exclude_target_gene=disc.exclude_target_gene,
        exclusion_scope=disc.exclusion_scope,
        control_source=cfg.control_source,
        target_gene_map=job.get("target_gene_map"),
        **kw,
    )
    de = DEParams()
    out["de_overlap_vcc"] = de_overlap(
        de_pred=pred_de,
        de_real=real_de,
        k=None,
        metric="overlap",
        sort_by=de.sort_by,
        p_adj_threshold=de.p_adj_threshold,
        nan_lfc_policy=de.nan_lfc_policy,
        min_abs_log2fc=de.min_abs_log2fc,
        control=CONTROL,
    )
    out["de_params"] = {
        "mean_calc": de.mean_calc,
        "epsilon": de.epsilon,
        "fdr_scope": de.fdr_scope,
        "nan_lfc_policy": de.nan_lfc_policy,
        "sort_by": de.sort_by,
        "p_adj_threshold": de.p_adj_threshold,
    }
    return out


if __name__ == "__main__":
    job = json.loads(open(sys.argv[1]).read())
    print(json.dumps({"legacy": legacy, "vcc": vcc}[job["kind"]](job)))
