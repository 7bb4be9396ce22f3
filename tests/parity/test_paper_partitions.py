"""The paper's partitions: GEARS' "simulation" split against the published labels, and
the Norman doubles.

Oracles (the paper's published Source Data, none of it produced by the book's code):
- the split labels (train / val / test per perturbation and seed) of
  `single_perturbation_prediction.xlsx`, Panels A and C, and the held-out doubles of
  `perturbation_prediction.xlsx`;
- the complete condition lists after GEARS' GO filter, one row per condition in the UMAP
  panel of `suppl-dataset_overview.xlsx` (Panel B), which our split starts from.
"""

from __future__ import annotations

import warnings

import pytest

from helpers import published
from helpers.splits import gears_simulation_split, single_split

DATASETS = published.PAPER_SINGLE_DATASETS  # dataset -> singles after GEARS' GO filter
SEEDS = published.PAPER_SINGLE_SEEDS
# train (without ctrl) / val / test per seed: method_spec.md section 4.1 (the paper's
# printed sizes)
SIZES = {
    "adamson": (54, 6, 21),
    "replogle_k562_essential": (733, 82, 272),
    "replogle_rpe1_essential": (1035, 115, 384),
}


@pytest.mark.parametrize("dataset", list(DATASETS))
def test_paper_condition_lists_are_the_go_filtered_ones(dataset):
    conditions = published.paper_conditions(dataset)
    singles = [c for c in conditions if c != "ctrl" and "+" not in c]
    assert (
        "ctrl" in conditions
        and len(singles) == DATASETS[dataset] == len(conditions) - 1
    )


@pytest.mark.parametrize("dataset", list(DATASETS))
def test_gears_split_reproduces_every_published_label(dataset):
    conditions = published.paper_conditions(dataset)
    for seed in SEEDS:
        split = gears_simulation_split(conditions, seed, dataset=dataset)
        sizes = split.sizes()
        assert (sizes["train"] - 1, sizes["val"], sizes["test"]) == SIZES[dataset]
        labels = published.published_single_labels(dataset, seed)
        assert len(labels) > 40 and {"train", "val", "test"} == set(labels.values())
        wrong = {
            c: (split.assignment.get(c), lab)
            for c, lab in labels.items()
            if split.assignment.get(c) != lab
        }
        assert not wrong, (
            f"{dataset} seed {seed}: {len(wrong)} of {len(labels)} labels "
            f"differ, e.g. {list(wrong.items())[:3]}"
        )
        # the order of the data does not matter (GEARS sorts the genes)
        assert gears_simulation_split(conditions[::-1], seed).assignment == {
            c: split.assignment[c] for c in conditions[::-1]
        }
        assert single_split(conditions, seed).assignment == split.assignment


@pytest.mark.parametrize("dataset", list(DATASETS))
def test_paper_single_split_on_the_paper_data_is_gears_split(dataset):
    conditions = published.paper_conditions(dataset)
    for seed in SEEDS:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            split = published.paper_single_split(dataset, seed, conditions)
        assert split.kind == "simulation" and "equals all" in split.note
        assert split.assignment == gears_simulation_split(conditions, seed).assignment


def test_paper_single_split_on_other_data_imposes_the_published_labels_and_says_so():
    labels = published.published_single_labels("adamson", 1)
    names = sorted(labels) + [f"EXTRA{i}" for i in range(30)]
    with pytest.warns(UserWarning, match="published labels differed"):
        split = published.paper_single_split("adamson", 1, ["ctrl", *names])
    assert split.kind == "simulation+published" and "imposed" in split.note
    assert all(split.subset_of(g) == lab for g, lab in labels.items())
    held = [g for g, lab in labels.items() if lab != "train"]
    with pytest.raises(ValueError, match="not in the data"):
        published.paper_single_split(
            "adamson", 1, ["ctrl", *[g for g in names if g != held[0]]]
        )
    with pytest.raises(ValueError, match="seeds"):
        published.paper_single_split("adamson", 3, ["ctrl", *names])
    with pytest.raises(ValueError, match="datasets"):
        published.paper_single_split("norman2019", 1, ["ctrl", *names])


def test_norman_after_the_go_filter_has_163_training_conditions_per_seed():
    conditions = published.paper_conditions("norman2019")
    assert len(conditions) == 225 and sum("+" in c for c in conditions) == 124
    # GEARS' GO filter removed these two (their gene IER5L is not in GEARS' GO gene
    # list)
    assert not {"IER5L", "LYL1+IER5L", "IER5L+LYL1"} & set(conditions)
    for seed in range(1, 6):
        split = published.paper_double_split(seed, conditions)
        assert split.sizes() == {"train": 163, "val": 31, "test": 31}
    # without the filter the training set would have the two extra conditions (165)
    unfiltered = published.paper_double_split(1, [*conditions, "IER5L", "LYL1+IER5L"])
    assert unfiltered.sizes()["train"] == 165


def test_gears_split_of_doubles_follows_gears_rules():
    singles = [f"G{i:02d}" for i in range(40)]
    doubles = [f"G{i:02d}+G{i + 1:02d}" for i in range(0, 39, 2)]
    split = gears_simulation_split(["ctrl", *singles, *doubles], seed=1)
    seen = {g for g in singles if split.assignment[g] in ("train", "val")}
    for d in doubles:
        if (
            not set(d.split("+")) <= seen
        ):  # a double with an unseen gene is never trained on
            assert split.assignment[d] == "test"
    assert split.assignment["ctrl"] == "train"
