"""Every misuse of the predictions contract is a clear error."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import baselines, metrics
from helpers.predictions import PredictionError, Predictions
from helpers.pseudobulk import Pseudobulk
from helpers.splits import double_split


@pytest.fixture
def setup():
    rng = np.random.default_rng(0)
    conditions = ["ctrl", "A", "B", "C", "D", "A+B", "A+C", "B+C", "C+D", "A+D", "B+D"]
    genes = [f"g{i}" for i in range(20)]
    means = pd.DataFrame(
        rng.normal(2, 1, (len(conditions), len(genes))), index=conditions, columns=genes
    )
    truth = Pseudobulk(means, pd.Series(50, index=conditions), "toy")
    split = double_split(conditions, seed=1, dataset="toy")
    pred = baselines.additive(truth.subset(split.train), split.held_out, seed=1)
    return truth, split, pred


def test_valid_predictions_evaluate(setup):
    truth, split, pred = setup
    table = metrics.evaluate(pred, truth, split)
    assert list(table.columns) == metrics.METRIC_COLUMNS
    assert (
        set(table["split"]) == {"test", "val"}
        and len(table) == 3
        and (table["seed"] == 1).all()
    )


def test_unknown_condition(setup):
    truth, split, pred = setup
    values = pred.values.copy()
    values.index = [*values.index[:-1], "A+Z"]
    with pytest.raises(PredictionError, match=r"do not exist in toy: \['A\+Z'\]"):
        metrics.evaluate(Predictions(values, "m", "toy"), truth, split)


def test_missing_held_out_condition(setup):
    truth, split, pred = setup
    partial = Predictions(pred.values.iloc[:-1], "m", "toy")
    with pytest.raises(
        PredictionError, match="held-out condition\\(s\\) have no prediction"
    ):
        metrics.evaluate(partial, truth, split)
    table = metrics.evaluate(partial, truth, split, allow_missing=True)
    assert len(table) == 2 and table.attrs["missing_conditions"] == [
        pred.values.index[-1]
    ]


def test_training_condition_presented_as_held_out(setup):
    truth, split, pred = setup
    leaked = pd.concat([pred.values, truth.means.loc[[split.train[-1]]]])
    with pytest.raises(PredictionError, match="not held out .* inflates performance"):
        metrics.evaluate(Predictions(leaked, "m", "toy"), truth, split)


def test_gene_sets_that_do_not_match(setup):
    truth, split, pred = setup
    renamed = pred.values.rename(columns=lambda g: g.upper())
    with pytest.raises(PredictionError, match="Gene sets do not match"):
        metrics.evaluate(Predictions(renamed, "m", "toy"), truth, split)
    fewer = Predictions(pred.values.iloc[:, :10], "m", "toy")
    with pytest.raises(PredictionError, match="evaluation genes are not predicted"):
        metrics.evaluate(fewer, truth, split)
    table = metrics.evaluate(fewer, truth, split, allow_missing_genes=True)
    assert (table["n_genes"] <= 10).all()


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_infinite_predictions(setup, bad):
    _, _, pred = setup
    values = pred.values.copy()
    values.iloc[0, 3] = bad
    with pytest.raises(PredictionError, match="NaN or infinite"):
        Predictions(values, "m", "toy")


def test_dataset_mismatch(setup):
    truth, split, pred = setup
    with pytest.raises(
        PredictionError, match="for dataset 'other' but the truth is 'toy'"
    ):
        metrics.evaluate(Predictions(pred.values, "m", "other"), truth, split)


def test_not_a_predictions_object(setup):
    truth, split, pred = setup
    with pytest.raises(PredictionError, match="expects a Predictions object"):
        metrics.evaluate(pred.values, truth, split)


def test_file_round_trip_and_bad_files(setup, tmp_path):
    _, _, pred = setup
    path = pred.save(tmp_path / "pred.csv.gz")
    again = Predictions.load(path)
    pd.testing.assert_frame_equal(
        again.values.sort_index(), pred.values.sort_index(), check_like=True
    )
    assert (again.method, again.dataset, again.seed) == ("additive", "toy", 1)
    (tmp_path / "wrong.csv").write_text("cond,gene,value\nA+B,g1,1\n")
    with pytest.raises(PredictionError, match="needs the columns"):
        Predictions.load(tmp_path / "wrong.csv")
    with pytest.raises(PredictionError, match="No predictions file"):
        Predictions.load(tmp_path / "absent.csv")
    mixed = pd.concat([pred.to_long(), pred.to_long().assign(method="other")])
    with pytest.raises(PredictionError, match="several values of 'method'"):
        Predictions.from_long(mixed)
    holes = pred.to_long().iloc[1:]
    with pytest.raises(PredictionError, match="lack predictions for some genes"):
        Predictions.from_long(holes)


def test_duplicate_conditions_and_non_numeric(setup):
    _, _, pred = setup
    with pytest.raises(PredictionError, match="predicted more than once"):
        Predictions(pd.concat([pred.values, pred.values.iloc[:1]]), "m", "toy")
    text = pred.values.astype(object)
    text.iloc[0, 0] = "high"
    with pytest.raises(PredictionError, match="must be numbers"):
        Predictions(text, "m", "toy")
