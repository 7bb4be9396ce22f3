"""CPA as a benchmark method (helpers.models.cpa.method): the contract, the two scales
of the paper's protocol against hand-computed cases, and determinism.

Parity of the network and its training with the real cpa-tools is
tests/parity/test_cpa.py.

Hand-computed scales (3 rows, 2 genes; rows 1-2 condition A, row 3 condition B;
control-cell sizes 1e4, 2e4, 5e3):

- paper (``mean log1p(pred)``): A = ((ln 2 + ln 4) / 2, (ln 4 + ln 2) / 2),
  B = (0, ln 8);
- normalised (``mean log1p(pred / size * 1e4)``): the rows become (1, 3), (1.5, 0.5),
  (0, 14), so A = ((ln 2 + ln 2.5) / 2, (ln 4 + ln 1.5) / 2), B = (0, ln 15).
"""

from __future__ import annotations

import math

import anndata as ad
import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch")

from helpers import benchmark  # noqa: E402
from helpers.errors import InputError  # noqa: E402
from helpers.models.contract import Method  # noqa: E402
from helpers.models.cpa import method as cpa_method  # noqa: E402

from ..helpers_fixtures import HELD_OUT, TINY, TRAIN, register_task  # noqa: E402

FAST = {"max_epochs": 2, "settings": {"check_val_every_n_epoch": 1}}


def test_the_two_scales_match_the_hand_computed_case():
    pred = np.array([[1.0, 3.0], [3.0, 1.0], [0.0, 7.0]])
    size = np.array([1e4, 2e4, 5e3])
    labels = ["A", "A", "B"]
    paper = cpa_method.scale_profiles(pred, size, labels, "paper")
    ln = math.log
    np.testing.assert_allclose(
        paper.loc["A"], [(ln(2) + ln(4)) / 2, (ln(4) + ln(2)) / 2], rtol=1e-12
    )
    np.testing.assert_allclose(paper.loc["B"], [0.0, ln(8)], rtol=1e-12)
    norm = cpa_method.scale_profiles(pred, size, labels, "normalised")
    np.testing.assert_allclose(
        norm.loc["A"], [(ln(2) + ln(2.5)) / 2, (ln(4) + ln(1.5)) / 2], rtol=1e-12
    )
    np.testing.assert_allclose(norm.loc["B"], [0.0, ln(15)], rtol=1e-12)
    assert list(norm.index) == ["A", "B"]
    with pytest.raises(InputError, match="choose 'normalised' or 'paper'"):
        cpa_method.scale_profiles(pred, size, labels, "log2")


def test_counts_rebuilt_from_log_normalised_values():
    counts = np.array([[1.0, 0.0, 3.0], [2.0, 5.0, 0.0]])
    size = np.array([100.0, 50.0])
    x = np.log1p(counts / size[:, None] * 1e4)
    got, got_size = cpa_method.counts_from_lognorm(x, size)
    np.testing.assert_array_equal(got, counts)
    # the paper's recipe: the smallest non-zero value is taken to be 1 count, right
    # for the first cell, half the truth for the second (its rarest gene had 2)
    got, got_size = cpa_method.counts_from_lognorm(x)
    np.testing.assert_array_equal(got[0], counts[0])
    np.testing.assert_allclose(got_size, [100.0, 25.0], rtol=1e-9)
    with pytest.raises(InputError, match="non-zero"):
        cpa_method.counts_from_lognorm(np.zeros((1, 3)))


def _cells() -> ad.AnnData:
    """Eight cells per condition: Poisson counts around the condition's rates, times
    10, log-normalised to 1e4 (the truth's scale)."""
    rng = np.random.default_rng(0)
    rows, conditions = [], []
    for condition, rate in TINY.items():
        rows.append(rng.poisson(np.array(rate) * 10.0, (8, 3)) + 1.0)
        conditions += [condition] * 8
    counts = np.vstack(rows)
    x = np.log1p(counts / counts.sum(1, keepdims=True) * 1e4)
    obs = pd.DataFrame(
        {"condition": conditions}, index=[f"c{i}" for i in range(len(conditions))]
    )
    adata = ad.AnnData(
        x.astype(np.float32), obs=obs, var=pd.DataFrame(index=["A", "B", "C"])
    )
    adata.uns["perturbbook"] = {"dataset": "tiny"}
    return adata


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread: the tiny runs are overhead-bound, and CI shares 2 cores."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def cells_task(monkeypatch, one_thread):
    cells = _cells()
    frame = pd.DataFrame(cells.X, columns=cells.var_names)
    means = frame.groupby(cells.obs["condition"].to_numpy()).mean()
    return register_task(monkeypatch, "tiny_cpa_cells", means, cells, n=8)


def test_cpa_method_meets_the_contract_never_reads_held_out_cells_and_repeats(
    cells_task, monkeypatch
):
    seen = {}
    original = cpa_method.train

    def spy(model, counts, conditions, *, split, **kwargs):
        seen["labels"] = set(np.asarray(conditions).tolist())
        seen["watched"] = set(np.asarray(conditions)[np.asarray(split) == "valid"])
        return original(model, counts, conditions, split=split, **kwargs)

    monkeypatch.setattr(cpa_method, "train", spy)
    method = cpa_method.CpaMethod(**FAST)
    assert isinstance(method, Method) and method.name == "cpa_book"
    result = benchmark.run(method, task=cells_task.name, progress=False, extras=False)
    assert seen["labels"] == set(TRAIN)  # no held-out cell reaches the training
    assert seen["watched"] and seen["watched"] < set(TRAIN) - {"ctrl"}
    rows = result.metrics[result.metrics["method"] == "cpa_book"]
    assert sorted(rows["condition"]) == HELD_OUT and np.isfinite(rows["l2"]).all()
    run = method.runs[0]
    assert run.epochs == FAST["max_epochs"] and run.best_epoch is not None
    # same command, same bytes: a fresh method on the same split
    split = cells_task.splits[0]
    again = cpa_method.CpaMethod(**FAST).predict(
        cells_task.training_data(split), HELD_OUT
    )
    first = run.predict(HELD_OUT, seed=0, split_seed=split.seed)
    assert again.values.to_numpy().tobytes() == first.values.to_numpy().tobytes()
    assert not np.array_equal(
        first.values.to_numpy(),
        run.predict(HELD_OUT, scale="paper", seed=0).values.to_numpy(),
    )


def test_the_paper_protocol_watches_test_cells(cells_task, monkeypatch):
    seen = {}
    original = cpa_method.train

    def spy(model, counts, conditions, *, split, **kwargs):
        seen["watched"] = set(np.asarray(conditions)[np.asarray(split) == "valid"])
        return original(model, counts, conditions, split=split, **kwargs)

    monkeypatch.setattr(cpa_method, "train", spy)
    split = cells_task.splits[0]
    run = cpa_method.train_cpa(cells_task.adata(), split, watch="test", max_epochs=1)
    assert seen["watched"] == set(HELD_OUT) and run.watched == HELD_OUT
    with pytest.raises(InputError, match="no val conditions"):
        cpa_method.train_cpa(cells_task.adata(), split, watch="val", max_epochs=1)
