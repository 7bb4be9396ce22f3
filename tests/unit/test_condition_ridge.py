"""The paper's "*" decoder (helpers.models.condition_ridge) against closed forms.

Oracles: the ridge's normal equations solved by hand with numpy (centred data, so the
intercept is not penalised, as scikit-learn's ``Ridge(fit_intercept=True)`` documents),
and cases worked by hand: a constant embedding makes ridge predict the training mean
(the mean baseline), the spread of two embeddings (1, 0) and (-1, 0) is 1, and a
prediction halfway between the mean and the truth has shrinkage 0.5.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import baselines, benchmark
from helpers.errors import InputError
from helpers import controls
from helpers.models.condition_ridge import (
    ConditionRidge,
    embedding_spread,
    random_controls,
    shrinkage_to_intercept,
)
from helpers.pseudobulk import Pseudobulk
from helpers.splits import holdout_split

CONDITIONS = ["ctrl", "A", "B", "C", "A+B", "B+C", "A+C"]
TRAIN = ["ctrl", "A", "B", "C", "B+C"]
HELD_OUT = ["A+B", "A+C"]


def _truth(seed: int = 0) -> Pseudobulk:
    rng = np.random.default_rng(seed)
    means = pd.DataFrame(
        rng.normal(5, 1, (len(CONDITIONS), 4)),
        index=CONDITIONS,
        columns=["g1", "g2", "g3", "g4"],
    )
    return Pseudobulk(means, pd.Series(10, index=CONDITIONS), dataset="tiny")


def _embedding(seed: int = 1, dim: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(0, 1, (len(CONDITIONS), dim)), index=CONDITIONS)


def _closed_form(e_train, y_train, e_new, alpha=1.0):
    e_mean, y_mean = e_train.mean(axis=0), y_train.mean(axis=0)
    ec, yc = e_train - e_mean, y_train - y_mean
    w = np.linalg.solve(ec.T @ ec + alpha * np.eye(ec.shape[1]), ec.T @ yc)
    return y_mean + (e_new - e_mean) @ w


def test_predictions_equal_the_normal_equations():
    truth, emb = _truth(), _embedding()
    split = holdout_split(CONDITIONS, HELD_OUT, dataset="tiny", seed=1)
    table, preds = benchmark.run_methods(
        truth, [split], {"tiny_encoder": ConditionRidge(emb, "tiny_encoder")}
    )
    expected = _closed_form(
        emb.loc[TRAIN].to_numpy(),
        truth.means.loc[TRAIN].to_numpy(),
        emb.loc[HELD_OUT].to_numpy(),
    )
    got = preds[0].values.loc[HELD_OUT].to_numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)
    assert set(table["method"]) == {"tiny_encoder"}


def test_a_constant_embedding_predicts_the_mean_baseline():
    truth = _truth()
    emb = pd.DataFrame(1.0, index=CONDITIONS, columns=[0, 1])
    split = holdout_split(CONDITIONS, HELD_OUT, dataset="tiny", seed=1)
    _, preds = benchmark.run_methods(
        truth,
        [split],
        {"ridge": ConditionRidge(emb, "tiny_encoder"), "mean": baselines.mean_baseline},
    )
    ridge, mean = preds
    np.testing.assert_allclose(ridge.values.to_numpy(), mean.values.to_numpy())
    shrink = shrinkage_to_intercept(ridge.values, truth.means, truth.means.loc[TRAIN])
    np.testing.assert_allclose(shrink.to_numpy(), 0.0, atol=1e-12)
    assert embedding_spread(emb) == 0.0


def test_conditions_without_embedding_are_left_out_and_listed():
    truth, emb = _truth(), _embedding().drop(index="A+C")
    method = ConditionRidge(emb, "tiny_encoder")
    split = holdout_split(CONDITIONS, HELD_OUT, dataset="tiny", seed=1)
    _, preds = benchmark.run_methods(
        truth, [split], {"ridge": method}, allow_missing=True
    )
    assert list(preds[0].values.index) == ["A+B"]
    assert method.not_predicted == ["A+C"]


def test_spread_and_shrinkage_by_hand():
    emb = pd.DataFrame([[1.0, 0.0], [-1.0, 0.0], [0.0, 0.0]], index=["A", "B", "ctrl"])
    assert embedding_spread(emb) == pytest.approx(1.0)
    # with ctrl: mean (0, 0), rms distance sqrt(2/3), rms norm sqrt(2/3)
    assert embedding_spread(emb, exclude_control=False) == pytest.approx(1.0)
    emb2 = pd.DataFrame([[3.0, 0.0], [1.0, 0.0]], index=["A", "B"])
    assert embedding_spread(emb2) == pytest.approx(1.0 / np.sqrt(5.0))
    train = pd.DataFrame([[0.0, 0.0], [2.0, 2.0]], index=["ctrl", "A"])
    truth = pd.DataFrame([[3.0, 1.0]], index=["B"])
    half = pd.DataFrame([[2.0, 1.0]], index=["B"])  # m = (1, 1); truth - m = (2, 0)
    assert shrinkage_to_intercept(half, truth, train)["B"] == pytest.approx(0.5)


@pytest.mark.parametrize(
    "embedding, message",
    [
        (pd.DataFrame(), "non-empty DataFrame"),
        (pd.DataFrame([[np.nan]], index=["A"]), "NaN or infinite"),
        (pd.DataFrame([[1.0], [2.0]], index=["A", "A"]), "embedded twice"),
    ],
)
def test_bad_embeddings_get_one_line(embedding, message):
    with pytest.raises(InputError, match=message):
        ConditionRidge(embedding, "tiny_encoder")


def test_too_few_embedded_training_conditions():
    truth = _truth()
    emb = _embedding().loc[["A+B", "A+C", "ctrl"]]
    with pytest.raises(InputError, match="fewer than 2 training conditions"):
        ConditionRidge(emb, "tiny_encoder").fit(truth.means.loc[TRAIN])


def test_random_controls_are_the_same_ridge_on_a_random_table():
    truth, emb = _truth(), _embedding(dim=3)
    rc = random_controls({"tiny_encoder": emb}, seeds=(0, 1))
    assert rc.pairs == {"tiny_encoder": "tiny_encoder_random"}
    first = rc.methods["tiny_encoder_random"][0]
    assert first.embedding.shape == emb.shape
    assert list(first.embedding.index) == list(emb.index)
    assert not np.allclose(first.embedding.to_numpy(), emb.to_numpy())
    split = holdout_split(CONDITIONS, HELD_OUT, dataset="tiny", seed=1)
    table = controls.run_seeded(truth, [split], rc)
    assert sorted(table["embedding_seed"].unique()) == [0, 1]
    expected = _closed_form(
        first.embedding.loc[TRAIN].to_numpy(),
        truth.means.loc[TRAIN].to_numpy(),
        first.embedding.loc[HELD_OUT].to_numpy(),
    )
    got = table[table["embedding_seed"] == 0].set_index("condition").loc[HELD_OUT]
    l2 = np.sqrt(((expected - truth.means.loc[HELD_OUT].to_numpy()) ** 2).sum(axis=1))
    np.testing.assert_allclose(got["l2"].to_numpy(), l2, rtol=1e-9)
