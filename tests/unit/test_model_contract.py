"""The one model contract (helpers.models.contract): every kind of model meets it and
runs through helpers.benchmark.run; a wrong object is refused with one line.

The oracle is a hand-made task (three genes A, B, C, which are also the targets; every
number below by hand): the mean of the five training rows is (10.2, 9.6, 10.8), so its
L2 to the held-out A+B = (12, 9, 11) is sqrt(3.64) and to A+C = (11, 10, 13) is
sqrt(5.64).
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from helpers import baselines, benchmark, linear
from helpers.errors import InputError
from helpers.models.contract import (
    Method,
    TaskData,
    as_method,
    from_pseudobulk,
    validation_split,
)
from helpers.predictions import Predictions
from helpers.splits import holdout_split

from ..helpers_fixtures import HELD_OUT, TRAIN, register_task, tiny_means

MEAN_OF_TRAIN = [10.2, 9.6, 10.8]
L2_OF_MEAN = {"A+B": np.sqrt(3.64), "A+C": np.sqrt(5.64)}


def _cells(means: pd.DataFrame, n: int = 6) -> ad.AnnData:
    """n cells per condition around its mean."""
    rng = np.random.default_rng(0)
    rows, conditions = [], []
    for condition, mean in means.iterrows():
        rows.append(mean.to_numpy() + rng.normal(0, 0.05, (n, len(mean))))
        conditions += [condition] * n
    obs = pd.DataFrame(
        {"condition": conditions}, index=[f"c{i}" for i in range(len(conditions))]
    )
    adata = ad.AnnData(
        np.vstack(rows).astype(np.float32),
        obs=obs,
        var=pd.DataFrame(index=list(means.columns)),
    )
    adata.uns["perturbbook"] = {"dataset": "tiny"}
    return adata


@pytest.fixture
def tiny_task(monkeypatch):
    """The hand-made pseudobulks, no cells."""
    return register_task(monkeypatch, "tiny_contract_doubles", tiny_means())


@pytest.fixture
def cells_task(monkeypatch):
    """The same design on the log1p scale, with six cells per condition (for a
    network)."""
    means = np.log1p(tiny_means())
    return register_task(monkeypatch, "tiny_contract_cells", means, _cells(means))


def _l2(result, method):
    rows = result.metrics[result.metrics["method"] == method].set_index("condition")
    return rows["l2"].to_dict()


def _by_hand_mean(train: TaskData, conditions) -> pd.DataFrame:
    """A reader's model: the mean of the training rows, written without the book's
    helpers."""
    mean = train.pseudobulk.means.to_numpy().mean(axis=0)
    return pd.DataFrame(
        [mean] * len(conditions), index=list(conditions), columns=train.pseudobulk.genes
    )


class ReaderMethod:
    """A reader's model as a class: a name and predict(train, conditions)."""

    name = "reader_class"

    def __init__(self):
        self.seen: list[list[str]] = []

    def predict(self, train, conditions):
        self.seen.append(list(train.pseudobulk.conditions))
        return _by_hand_mean(train, conditions)


def test_baselines_and_linear_model_meet_the_contract():
    for name, method in baselines.BASELINES.items():
        assert isinstance(method, Method) and method.name == name
    assert isinstance(from_pseudobulk(linear.linear_model), Method)
    assert from_pseudobulk(linear.linear_model).name == "linear_model"
    assert isinstance(ReaderMethod(), Method)
    assert not isinstance(
        _by_hand_mean, Method
    )  # a plain function is wrapped, not a Method


def test_a_baseline_stays_callable_as_the_function(tiny_task):
    train = tiny_task.truth.subset(TRAIN)
    pred = baselines.BASELINES["mean"](train, HELD_OUT, seed=3)
    np.testing.assert_allclose(pred.values.to_numpy(), [MEAN_OF_TRAIN] * 2)
    assert pred.seed == 3 and pred.method == "mean"


@pytest.mark.parametrize("kind", ["function", "class", "adapter"])
def test_every_kind_of_model_runs_through_benchmark_run(tiny_task, kind):
    reader = ReaderMethod()
    model = {
        "function": _by_hand_mean,
        "class": reader,
        "adapter": from_pseudobulk(
            lambda pb, conditions, *, seed: Predictions(
                _by_hand_mean(TaskData(pb, None), conditions),
                "reader_pseudobulk",
                pb.dataset,
                seed,
            ),
            name="reader_pseudobulk",
        ),
    }[kind]
    name = {
        "function": "reader_function",
        "class": "reader_class",
        "adapter": "reader_pseudobulk",
    }[kind]
    result = benchmark.run(
        model, task=tiny_task.name, name=name, progress=False, extras=False
    )
    mine, mean = _l2(result, name), _l2(result, "mean")
    for condition, expected in L2_OF_MEAN.items():
        assert mine[condition] == pytest.approx(expected)
        assert mean[condition] == pytest.approx(expected)
    assert set(result.leaderboard["method"]) >= {name, "mean", "additive", "no_change"}
    if kind == "class":
        assert reader.seen == [TRAIN]  # it saw the training rows only


def test_a_method_names_itself(tiny_task):
    result = benchmark.run(
        ReaderMethod(), task=tiny_task.name, progress=False, extras=False
    )
    assert "reader_class" in set(result.leaderboard["method"])


def test_run_methods_takes_methods_and_pseudobulk_functions(tiny_task):
    split = tiny_task.splits[0]
    methods = {"mean_fn": baselines.mean_baseline, "reader_class": ReaderMethod()}
    table, predictions = benchmark.run_methods(
        tiny_task.truth, [split], methods, n_top=3
    )
    for name in methods:
        rows = table[table["method"] == name].set_index("condition")
        for condition, expected in L2_OF_MEAN.items():
            assert rows.loc[condition, "l2"] == pytest.approx(expected), name
    assert {p.method for p in predictions} == set(methods)


@pytest.mark.parametrize("wrong", [42, "mean", [baselines.mean_baseline]])
def test_a_wrong_object_gives_one_line_naming_the_protocol(tiny_task, wrong):
    with pytest.raises(InputError) as err:
        benchmark.run(wrong, task=tiny_task.name, progress=False, extras=False)
    message = str(err.value)
    assert "\n" not in message and "Method" in message
    with pytest.raises(InputError) as err:
        benchmark.run_methods(tiny_task.truth, tiny_task.splits, {"x": wrong})
    assert "\n" not in str(err.value) and "Method" in str(err.value)
    with pytest.raises(ValueError):  # an InputError is a ValueError too
        as_method(wrong)


def test_pseudobulk_only_training_data_refuse_cells(tiny_task):
    with pytest.raises(InputError, match="pseudobulks only"):
        TaskData(tiny_task.truth.subset(TRAIN), tiny_task.splits[0]).cells()


def test_scgpt_method_meets_the_contract_and_never_sees_held_out_cells(
    cells_task, tmp_path, monkeypatch
):
    pytest.importorskip("torch")
    from helpers.models import scgpt
    from helpers.models.scgpt import method as scgpt_method

    folder, _ = scgpt.pretrain_tiny_checkpoint(
        cells_task.adata(), tmp_path / "tiny", epochs=1, max_seq_len=3
    )
    seen = []
    original = scgpt_method.prepare_cells

    def spy(adata, vocab, **kwargs):
        seen.append(set(adata.obs["condition"]))
        return original(adata, vocab, **kwargs)

    monkeypatch.setattr(scgpt_method, "prepare_cells", spy)
    # lr 1e-2 for 5 epochs brings the tiny network to the data's scale (the unit guards
    # pass)
    method = scgpt.ScGPTMethod(
        folder,
        name="book_transformer",
        epochs=5,
        lr=1e-2,
        max_seq_len=3,
        pool_size=4,
        batch_size=8,
        device="cpu",
    )
    assert isinstance(method, Method)
    result = benchmark.run(method, task=cells_task.name, progress=False, extras=False)
    assert seen == [set(TRAIN)]  # the training cells only: no held-out condition
    rows = result.metrics[result.metrics["method"] == "book_transformer"]
    assert sorted(rows["condition"]) == HELD_OUT and np.isfinite(rows["l2"]).all()
    assert len(method.logs) == 1 and method.logs[0].note.startswith("no validation")


def test_gears_method_meets_the_contract_and_trains_on_training_cells_only(monkeypatch):
    pytest.importorskip("gears")
    from helpers import annotations
    from helpers.models import gears
    from helpers.models.gears import method as gears_method

    seen = {}
    original = gears_method.train_gears

    def spy(adata, split, gene2go, **kwargs):
        seen["cells"] = set(adata.obs["condition"])
        seen["split"] = split
        return original(adata, split, gene2go, **kwargs)

    monkeypatch.setattr(gears_method, "train_gears", spy)
    method = gears.GearsMethod(annotations.gene2go(), epochs=1, hidden_size=16)
    assert isinstance(method, Method)
    task = benchmark.get_task("norman_subset_doubles")
    split = task.splits[0]
    result = benchmark.run(
        method, task=task.name, progress=False, extras=False, allow_missing=True
    )
    assert seen["cells"] == set(split.train)  # no held-out cells reach GEARS
    validated = seen["split"].conditions("val")
    assert validated and set(validated) < set(split.train) - {"ctrl"}
    assert seen["split"].conditions("test") == list(split.held_out)
    rows = result.metrics[result.metrics["method"] == "gears_book"]
    assert len(rows) and set(rows["condition"]) <= set(split.held_out)
    assert np.isfinite(rows["l2"]).all()


def test_validation_split_holds_back_a_seeded_share_of_the_training_perturbations():
    # 9 perturbed training conditions: round(0.25 * 9) = 2 held back; a share that
    # rounds to 0 still holds back 1; the control always stays in training
    train = ["ctrl"] + [f"G{i}" for i in range(9)]
    split = holdout_split(train + HELD_OUT, HELD_OUT, dataset="tiny", seed=3)
    got = validation_split(split, HELD_OUT, fraction=0.25, seed=7, note="{n} watched")
    draw = np.random.default_rng(7).choice(train[1:], size=2, replace=False)
    assert sorted(got.conditions("val")) == sorted(draw.tolist())
    assert got.conditions("test") == HELD_OUT and "ctrl" in got.train
    assert len(got.train) == 8 and got.note == "2 watched"
    assert (got.dataset, got.seed, got.kind) == (split.dataset, split.seed, split.kind)
    again = validation_split(split, HELD_OUT, fraction=0.25, seed=7)
    assert again.assignment == got.assignment
    few = validation_split(split, [], fraction=0.01, seed=0)
    assert len(few.conditions("val")) == 1
