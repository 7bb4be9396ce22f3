"""The metric catalog (issue 34): every column a scorer returns has a spec, the paired
test's sign is right for every metric, and an unknown column is refused in one line.

The oracles are written here, not read from the code: which columns are bookkeeping
(keys and counts, listed by hand), and which way each metric is better (from its
definition: an error, a distance or a rank is better low; a correlation, an overlap, an
accuracy or a rescaled score is better high).
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from helpers import ceilings, compare, retrieval
from helpers import cells as cells_mod
from helpers.benchmark import beyond
from helpers.errors import InputError
from helpers.metrics import (
    FAMILIES,
    catalog,
    evaluate,
    families,
    metric_input,
    score_families,
    summarise_families,
)
from helpers.predictions import Predictions
from helpers.pseudobulk import pseudobulk
from helpers.splits import Split

#: Columns that identify a row or count something; every other column a scorer returns
#: is a metric and needs a spec.
BOOKKEEPING = {
    "dataset",
    "method",
    "seed",
    "split",
    "condition",
    "reference",
    "n_genes",
    "n_candidates",
    "n_de",
    "n_cells",
    "n_half",
    "n_repeats",
    "n_pred",
    "n_obs",
    "n_drf",
}

#: Which way is better, from each metric's definition (module docstrings), not the code.
LOWER = {
    "l2",
    "mae",
    "weighted_mse",
    "energy_distance",
    "rank",
    "normalised_rank",
    "rank_vs_control",
    "rank_vs_mean",
    "expr_mse_unbiased_capped_norm",
    "de_wilcoxon_lfc_nmae",
}
HIGHER = {
    "pearson_delta",
    "r",
    "pearson_delta_perturbed_mean",
    "centroid_accuracy",
    "r2_delta_weighted",
    "discrimination_score_l1",
    "de_overlap_vcc",
    "de_overlap",
    "norm_l2",
    "norm_pearson_delta",
    "pds_cosine",
    "de_wilcoxon_direction_fidelity_yield_raw",
    "de_wilcoxon_direction_reach_raw",
    "de_wilcoxon_sig_jaccard",
}
PERTURBATIONS = ["A", "B", "C", "D", "E", "F"]
HELD_OUT = ["D", "E", "F"]


def _synthetic_cells(seed: int = 0, n_genes: int = 30, n_cells: int = 24):
    """ctrl and six perturbations, each moving its own three genes, with dropouts."""
    rng = np.random.default_rng(seed)
    blocks, labels = [], []
    for k, condition in enumerate(["ctrl", *PERTURBATIONS]):
        x = rng.gamma(2.0, 0.5, size=(n_cells, n_genes))
        if condition != "ctrl":
            x[:, 3 * k : 3 * k + 3] += 2.0
        x[rng.random(x.shape) < 0.3] = 0.0
        blocks.append(x)
        labels += [condition] * n_cells
    obs = pd.DataFrame(
        {"condition": labels}, index=[f"c{i}" for i in range(len(labels))]
    )
    var = pd.DataFrame(index=[f"g{j}" for j in range(n_genes)])
    adata = ad.AnnData(
        sp.csr_matrix(np.vstack(blocks).astype(np.float32)), obs=obs, var=var
    )
    adata.uns["perturbbook"] = {"dataset": "synthetic"}
    return adata


@pytest.fixture(scope="module")
def scored():
    """Five methods scored by every family: (cells, truth, split, metrics, preds)."""
    adata = _synthetic_cells()
    truth = pseudobulk(adata)
    assignment = {"ctrl": "train"} | {
        p: ("test" if p in HELD_OUT else "train") for p in PERTURBATIONS
    }
    split = Split(dataset="synthetic", seed=0, kind="custom", assignment=assignment)
    obs = truth.means.loc[HELD_OUT]
    rng = np.random.default_rng(1)
    train_mean = truth.means.loc[[p for p in PERTURBATIONS if p not in HELD_OUT]].mean()
    values = {
        "mean": pd.DataFrame([train_mean] * len(HELD_OUT), index=HELD_OUT),
        "split_half_replicate": obs + rng.normal(0, 0.02, obs.shape),
        "interpolated_duplicate": obs + rng.normal(0, 0.05, obs.shape),
        "good": obs + rng.normal(0, 0.1, obs.shape),
        "bad": obs + rng.normal(0, 1.0, obs.shape),
    }
    preds = {
        m: Predictions(v.clip(lower=0), m, "synthetic", 0) for m, v in values.items()
    }
    cache: dict = {}
    tables = []
    for pred in preds.values():
        table = evaluate(pred, truth, split, genes=truth.genes)
        inp = metric_input(pred, truth, split, truth.genes, cells=adata, cache=cache)
        table = table.merge(
            score_families(inp, "all"), on=["method", "seed", "condition"]
        )
        tables.append(table)
    metrics = pd.concat(tables, ignore_index=True)
    return adata, truth, split, metrics, preds


def _metric_columns(table: pd.DataFrame) -> set[str]:
    return set(table.columns) - BOOKKEEPING


def test_every_column_of_evaluate_and_the_families_has_a_spec(scored):
    _, _, _, metrics, _ = scored
    assert _metric_columns(metrics) <= set(catalog.SPECS)
    # and the families' own declarations agree with what score() returned
    expected = {"l2", "pearson_delta", "r"} | {
        c for name in families.family_names("all") for c in FAMILIES[name].COLUMNS
    }
    assert _metric_columns(metrics) == expected
    for column in expected:
        assert catalog.spec(column).role == "score"


def test_every_column_of_the_families_summaries_has_a_spec(scored):
    _, _, _, metrics, _ = scored
    summaries = summarise_families(metrics, "all")
    columns = _metric_columns(summaries)
    assert columns and columns <= set(catalog.SPECS), sorted(
        columns - set(catalog.SPECS)
    )
    assert {catalog.spec(c).role for c in columns} == {"summary"}


def test_every_column_of_chapter_8s_scorers_has_a_spec(scored):
    adata, truth, split, metrics, preds = scored
    genes = truth.genes
    returned: set[str] = set()
    for pred in preds.values():
        for reference in ("control", "mean"):
            ranks = retrieval.retrieval_ranks(
                pred, truth, reference=reference, split=split, genes=genes
            )
            returned |= _metric_columns(ranks)
        returned |= _metric_columns(
            retrieval.de_overlap(pred, truth, adata, n_de=5, genes=genes)
        )
    ceiling = ceilings.noise_ceiling(
        adata, truth, HELD_OUT, seed=0, n_repeats=2, genes=genes
    )
    returned |= _metric_columns(ceiling)
    with_ceiling = ceilings.normalised_scores(metrics, ceiling, baseline="mean")
    returned |= _metric_columns(with_ceiling)
    board_input = with_ceiling.assign(rank_vs_control=0.1, rank_vs_mean=0.2)
    board_input["de_overlap"] = 0.5
    returned |= _metric_columns(beyond.board_columns(board_input))
    energy = cells_mod.energy_distances(adata, adata, HELD_OUT, genes=genes)
    returned |= _metric_columns(energy)
    missing = returned - set(catalog.SPECS)
    assert not missing, f"columns without a MetricSpec: {sorted(missing)}"
    # the benchmark's extra columns are exactly chapter 8's families' columns
    assert set(beyond.EXTRA_COLUMNS) <= set(catalog.SPECS)
    for column in ("rank_vs_control", "rank_vs_mean", "de_overlap", "energy_distance"):
        assert catalog.spec(column).role == "score"
    for column in ("l2_ceiling", "l2_oracle", "pearson_delta_oracle"):
        assert catalog.spec(column).role == "reference"


def test_directions_follow_the_definitions():
    scores = set(catalog.columns())
    assert scores == LOWER | HIGHER, sorted(scores ^ (LOWER | HIGHER))
    for column in scores:
        expected = "lower" if column in LOWER else "higher"
        assert catalog.direction(column) == expected, column
    # every calibrated summary and rescaled score is "higher is better"
    for column in catalog.columns(role="summary"):
        assert catalog.direction(column) == "higher", column
    # the old tables are views of the catalog
    for column, direction in families.DIRECTIONS.items():
        assert direction == ("lower" if column in LOWER else "higher")
    assert compare.LOWER_IS_BETTER == LOWER


def _one_method_wins(columns, *, n: int = 6) -> pd.DataFrame:
    """ "good" beats "bad" on every condition and every column, by the definition's
    direction: the smaller value where lower is better, the larger elsewhere."""
    rows = []
    for i in range(n):
        for method, shift in (("good", 1.0), ("bad", 0.0)):
            row = {"dataset": "toy", "seed": 0, "condition": f"c{i}", "method": method}
            for column in columns:
                gap = (0.1 + i / 50) * shift
                row[column] = 0.5 - gap if column in LOWER else 0.5 + gap
            rows.append(row)
    return pd.DataFrame(rows)


def test_paired_test_says_good_is_better_on_every_metric_of_the_catalog():
    columns = catalog.columns()
    table = _one_method_wins(columns)
    for column in columns:
        out = compare.paired_test(table, "good", "bad", value=column, n_boot=50)
        row = out.iloc[0]
        assert row["mean_diff"] > 0, column
        reverse = compare.paired_test(table, "bad", "good", value=column, n_boot=50)
        assert reverse.iloc[0]["mean_diff"] < 0, column


def test_the_issues_mae_and_weighted_mse_sign_bug_is_gone():
    # the issue's report: a method better on mae / weighted_mse got a negative mean_diff
    table = _one_method_wins(["mae", "weighted_mse"])
    for column in ("mae", "weighted_mse"):
        good = table[table["method"] == "good"][column].to_numpy()
        bad = table[table["method"] == "bad"][column].to_numpy()
        assert (good < bad).all()  # good has the smaller error everywhere
        out = compare.paired_test(table, "good", "bad", value=column, n_boot=50)
        assert out.iloc[0]["mean_diff"] == pytest.approx(np.mean(bad - good))


def test_paired_test_on_real_scores_prefers_the_closer_prediction(scored):
    # good = truth + small noise, bad = truth + large noise: every error is smaller and
    # every correlation larger for good on each condition (checked below), so the
    # paired difference must say good is better
    _, _, _, metrics, _ = scored
    wide = metrics.set_index(["method", "condition"])
    for column in ("l2", "mae", "weighted_mse", "pearson_delta", "r2_delta_weighted"):
        good, bad = wide.loc["good", column], wide.loc["bad", column]
        assert ((good < bad) if column in LOWER else (good > bad)).all(), column
        out = compare.paired_test(metrics, "good", "bad", value=column, n_boot=50)
        assert out.iloc[0]["mean_diff"] > 0, column


@pytest.mark.parametrize("column", ["my_score", "l2_ceiling", "book_drf_l2"])
def test_a_column_that_is_not_a_per_condition_score_is_refused_in_one_line(column):
    table = _one_method_wins(["l2"]).assign(**{column: 1.0})
    with pytest.raises(InputError) as err:
        compare.paired_test(table, "good", "bad", value=column)
    message = str(err.value)
    assert "\n" not in message and column in message


def test_unknown_column_names_the_catalog():
    with pytest.raises(InputError, match="helpers.metrics.catalog") as err:
        catalog.spec("my_score")
    assert "\n" not in str(err.value)


def test_each_spec_is_complete_and_declared_by_its_family():
    for column, spec in catalog.SPECS.items():
        assert spec.column == column
        assert spec.description and "\n" not in spec.description
        # a peer's name without the peer's function would be unverifiable
        assert spec.peer_name is None or spec.peer_function is not None, column
        module = {m.NAME: m for m in catalog.FAMILY_MODULES}[spec.family]
        assert spec in module.SPECS
    with pytest.raises(InputError, match="direction"):
        catalog.MetricSpec("x", "paper", "up", False, None, None, "x")


def test_families_describe_is_built_from_the_catalog():
    # every registered family ("all" leaves out families.NOT_IN_ALL)
    table = families.describe(list(FAMILIES))
    assert list(table.columns) == ["family", "metric", "better", "needs_cells"]
    assert list(table["metric"]) == list(families.DIRECTIONS)
    assert (table.set_index("metric")["better"] == pd.Series(families.DIRECTIONS)).all()


def test_the_family_list_is_written_once():
    # the scoring families in table order (written here from the module docstrings):
    # the catalog's list without the paper's, which is evaluate itself
    expected = ["systema", "calibrated", "vcc", "vcc2026"]
    expected += ["retrieval", "de_agreement", "ceiling", "distribution"]
    assert [m.NAME for m in catalog.FAMILY_MODULES] == ["paper", *expected]
    assert list(FAMILIES) == expected
    assert all(FAMILIES[m.NAME] is m for m in catalog.FAMILY_MODULES[1:])
    assert families.family_names("all") == expected[:4]
