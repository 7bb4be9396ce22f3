"""Chapter 8's families, scored through :func:`helpers.metrics.score_families`, give
what chapter 8 showed before they were families.

Regression oracle: the per-condition columns of chapter 8's exercise 3 (the benchmark's
command line on the real Norman subset task), written by the earlier implementation
(``helpers.benchmark.beyond.extra_columns`` + ``add_ceiling`` at main 803ebf7,
``_build/results/08_beyond_the_paper/cli/metrics.csv``), copied here for the three
baselines. The hand-worked and theoretical checks of each formula stay in
``test_beyond_metrics.py`` and ``test_ceilings.py``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import benchmark
from helpers.benchmark import beyond
from helpers.metrics import distribution, families, metric_input
from helpers.pseudobulk import top_control_genes

EXPECTED = {
    "method": [
        "no_change",
        "no_change",
        "no_change",
        "no_change",
        "no_change",
        "additive",
        "additive",
        "additive",
        "additive",
        "additive",
        "mean",
        "mean",
        "mean",
        "mean",
        "mean",
    ],
    "condition": [
        "KLF1+MAP2K6",
        "KLF1+TGFBR2",
        "MAP2K3+MAP2K6",
        "MAP2K3+SLC38A2",
        "MAPK1+TGFBR2",
        "KLF1+MAP2K6",
        "KLF1+TGFBR2",
        "MAP2K3+MAP2K6",
        "MAP2K3+SLC38A2",
        "MAPK1+TGFBR2",
        "KLF1+MAP2K6",
        "KLF1+TGFBR2",
        "MAP2K3+MAP2K6",
        "MAP2K3+SLC38A2",
        "MAPK1+TGFBR2",
    ],
    "rank_vs_control": [
        0.5,
        0.5,
        0.5,
        0.5,
        0.5,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.25,
        0.0,
        0.5,
        0.75,
        1.0,
    ],
    "rank_vs_mean": [
        0.75,
        1.0,
        0.5,
        0.0,
        0.25,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.75,
        1.0,
        0.5,
        0.0,
        0.25,
    ],
    "de_overlap": [
        np.nan,
        np.nan,
        np.nan,
        np.nan,
        np.nan,
        0.3,
        0.4,
        0.45,
        0.55,
        0.55,
        0.35,
        0.5,
        0.35,
        0.35,
        0.4,
    ],
    "l2_ceiling": [
        0.3131182800750835,
        0.3284925586641086,
        0.3828286266418309,
        0.33837116443619586,
        0.4314423211850576,
        0.3131182800750835,
        0.3284925586641086,
        0.3828286266418309,
        0.33837116443619586,
        0.4314423211850576,
        0.3131182800750835,
        0.3284925586641086,
        0.3828286266418309,
        0.33837116443619586,
        0.4314423211850576,
    ],
    "pearson_delta_ceiling": [
        0.9873505250727607,
        0.9908862696947658,
        0.8282533472756666,
        0.8277615476896375,
        0.9618582676792999,
        0.9873505250727607,
        0.9908862696947658,
        0.8282533472756666,
        0.8277615476896375,
        0.9618582676792999,
        0.9873505250727607,
        0.9908862696947658,
        0.8282533472756666,
        0.8277615476896375,
        0.9618582676792999,
    ],
    "l2_oracle": [
        0.2214080591545602,
        0.23227931580071098,
        0.27070071793077166,
        0.23926454493082244,
        0.3050757910008187,
        0.2214080591545602,
        0.23227931580071098,
        0.27070071793077166,
        0.23926454493082244,
        0.3050757910008187,
        0.2214080591545602,
        0.23227931580071098,
        0.27070071793077166,
        0.23926454493082244,
        0.3050757910008187,
    ],
    "pearson_delta_oracle": [
        0.9936551338732974,
        0.9954327047544529,
        0.9100842528445741,
        0.9098140181870344,
        0.9807437319092587,
        0.9936551338732974,
        0.9954327047544529,
        0.9100842528445741,
        0.9098140181870344,
        0.9807437319092587,
        0.9936551338732974,
        0.9954327047544529,
        0.9100842528445741,
        0.9098140181870344,
        0.9807437319092587,
    ],
    "norm_l2": [
        -0.3968729299693641,
        -0.32820296274226934,
        0.39978797509987046,
        0.5552385066022456,
        0.2338005558995357,
        0.8766134848907372,
        0.8794396395724356,
        0.6550242369386455,
        0.7254834484502355,
        0.8633202561910785,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
    ],
    "norm_pearson_delta": [
        np.nan,
        np.nan,
        np.nan,
        np.nan,
        np.nan,
        0.9162226820922282,
        0.9419173675684704,
        0.7941044099761685,
        0.8439315902331614,
        0.9761657619881875,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
    ],
}


@pytest.fixture
def registered(monkeypatch):
    """Chapter 8's families in the registry (the integrator's diff of
    ``helpers/metrics/families.py`` adds them; this fixture holds either way)."""
    for module in (*beyond._MODULES, distribution):
        monkeypatch.setitem(families.FAMILIES, module.NAME, module)


def test_families_give_what_chapter_8_showed_before(registered):
    task = benchmark.get_task("norman_subset_doubles")
    split = task.splits[0]
    genes = top_control_genes(task.truth.ctrl, min(1000, len(task.truth.genes)))
    train = task.training_data(split)
    cache: dict = {}
    tables = []
    for name, method in task.reference_methods().items():
        if name not in ("no_change", "additive", "mean"):
            continue
        pred = method.predict(train, list(split.held_out))
        inp = metric_input(
            pred, task.truth, split, genes, cells=task.adata(), cache=cache
        )
        tables.append(families.score_families(inp, list(beyond.EXTRA_FAMILIES)))
    got = pd.concat(tables).set_index(["method", "condition"])
    expected = pd.DataFrame(EXPECTED).set_index(["method", "condition"])
    assert list(got.columns[1:]) == list(expected.columns) == beyond.EXTRA_COLUMNS
    got = got.loc[expected.index, expected.columns]
    # the same numbers, up to the last bits of a sum taken in another order
    np.testing.assert_allclose(
        got.to_numpy(dtype=float), expected.to_numpy(), rtol=1e-12, atol=1e-14
    )
    # a constant prediction has no top genes: NaN, as before
    assert got.loc["no_change", "de_overlap"].isna().all()


def test_a_pseudobulk_prediction_gets_no_energy_distance_and_says_why(registered):
    task = benchmark.get_task("norman_subset_doubles")
    split = task.splits[0]
    pred = task.reference_methods()["mean"].predict(
        task.training_data(split), list(split.held_out)
    )
    inp = metric_input(pred, task.truth, split, task.truth.genes, cells=task.adata())
    part = distribution.score(inp)
    assert part["energy_distance"].isna().all() and len(part) == len(split.held_out)
    assert "no cells" in part.attrs["reason"]
