"""Target-gene exclusion (``exclude_target``): every metric that correlates or ranks
across genes leaves out each condition's own target gene(s); the per-gene averages keep
every gene.

Expected values are worked out by hand in the comments (Pearson correlations of small
vectors, Euclidean distances, DE-list overlaps), or come from independent code
(``scipy.stats.ttest_ind`` for Welch's t, scikit-learn's weighted ``r2_score``), never
from the code under test. Each hand-worked case is built so that including the target
flips a sign or a ranking.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import r2_score

from helpers import benchmark
from helpers.metrics import evaluate, metric_input, score_families, systema, vcc
from helpers.predictions import Predictions
from helpers.pseudobulk import Pseudobulk, pseudobulk
from helpers.splits import Split, holdout_split

# --- a 4-gene single perturbation: the target decides the sign ------------------------
# genes A (the target), g1, g2, g3; control 10 everywhere.
# observed change of "A": (-5, 1, 2, 3); predicted change: (-5, 3, 2, 1).
# With A: x = (-5, 3, 2, 1), y = (-5, 1, 2, 3), both with mean 1/4;
#   centred x = (-5.25, 2.75, 1.75, 0.75), y = (-5.25, 0.75, 1.75, 2.75);
#   sum xy = 27.5625 + 2.0625 + 3.0625 + 2.0625 = 34.75,
#   sum x^2 = sum y^2 = 27.5625 + 7.5625 + 3.0625 + 0.5625 = 38.75 -> r = 139/155.
# Without A: (3, 2, 1) against (1, 2, 3): r = -1.
GENES4 = ["A", "g1", "g2", "g3"]
WITH_TARGET = 139 / 155
WITHOUT_TARGET = -1.0


def _truth4() -> Pseudobulk:
    means = pd.DataFrame(
        {
            "ctrl": [10, 10, 10, 10],
            # training perturbations B and C (targets not measured) average to the
            # control, so Systema's reference equals the control here
            "B": [10, 11, 10, 9],
            "C": [10, 9, 10, 11],
            "A": [5, 11, 12, 13],
        },
        index=GENES4,
        dtype=float,
    ).T
    return Pseudobulk(means, pd.Series(20, index=means.index), "toy")


def _split4() -> Split:
    return Split(
        "toy", 0, "toy", {"ctrl": "train", "B": "train", "C": "train", "A": "test"}
    )


def _pred4() -> Predictions:
    values = pd.DataFrame([[5.0, 13.0, 12.0, 11.0]], index=["A"], columns=GENES4)
    return Predictions(values, "m", "toy", 0)


@pytest.mark.parametrize(
    "exclude, expected", [(False, WITH_TARGET), (True, WITHOUT_TARGET)]
)
def test_paper_pearson_delta_and_r_flip_sign_without_the_target(exclude, expected):
    row = evaluate(_pred4(), _truth4(), _split4(), n_top=4, exclude_target=exclude)
    row = row.set_index("condition").loc["A"]
    assert row["pearson_delta"] == pytest.approx(expected, abs=1e-12)
    # the control is constant, so the raw correlation is the same number
    assert row["r"] == pytest.approx(expected, abs=1e-12)
    # L2 is a per-gene sum: sqrt(0 + 4 + 0 + 4) either way, over all 4 genes
    assert row["l2"] == pytest.approx(np.sqrt(8.0)) and row["n_genes"] == 4


@pytest.mark.parametrize(
    "exclude, expected", [(False, WITH_TARGET), (True, WITHOUT_TARGET)]
)
def test_systema_pearson_delta_perturbed_mean_flips_sign(exclude, expected):
    inp = metric_input(_pred4(), _truth4(), _split4(), GENES4, exclude_target=exclude)
    assert inp.exclude_target is exclude
    table = systema.score(inp)
    assert table.loc["A", "pearson_delta_perturbed_mean"] == pytest.approx(
        expected, abs=1e-12
    )


def test_default_is_the_papers_protocol():
    inp = metric_input(_pred4(), _truth4(), _split4(), GENES4)
    assert inp.exclude_target is False
    assert evaluate(_pred4(), _truth4(), _split4(), n_top=4)["pearson_delta"].iloc[
        0
    ] == pytest.approx(WITH_TARGET, abs=1e-12)


# --- retrieval: centroid accuracy, "panel" scope --------------------------------------
# genes A, B, g1, g2; held-out A and B; changes from a zero control:
#   truth A = (-5, 0, 1, 0), truth B = (0, -5, 0, 1)
#   prediction A = (-5, 0, 0, 1): right on its target, otherwise B's pattern
#   prediction B = truth B
# With the targets: d(pA, A) = sqrt(0+0+1+1) = sqrt 2, d(pA, B) = sqrt(25+25) -> B is
#   farther: accuracy(A) = 1; accuracy(B) = 1 (exact).
# Without A and B (both held-out targets, one gene set for every distance):
#   pA = (0, 1), A = (1, 0), B = (0, 1): d(pA, A) = sqrt 2 > d(pA, B) = 0 ->
#   accuracy(A) = 0; pB = B = (0, 1), d(pB, A) = sqrt 2 > 0 -> accuracy(B) = 1.
def test_centroid_accuracy_ranks_the_wrong_truth_first_without_targets():
    genes = ["A", "B", "g1", "g2"]
    obs = pd.DataFrame([[-5, 0, 1, 0], [0, -5, 0, 1]], index=["A", "B"], columns=genes)
    pred = pd.DataFrame([[-5, 0, 0, 1], [0, -5, 0, 1]], index=["A", "B"], columns=genes)
    with_t = systema.centroid_accuracies(pred, obs)
    without = systema.centroid_accuracies(pred, obs, exclude_target=True)
    assert with_t.tolist() == [1.0, 1.0]
    assert without.tolist() == [0.0, 1.0]
    with pytest.raises(ValueError, match="no gene left"):
        systema.centroid_accuracies(
            pred[["A", "B"]], obs[["A", "B"]], exclude_target=True
        )


# --- top-DE ranking: the VCC's DE overlap ---------------------------------------------
def _de(target: str, genes: list[str]) -> pd.DataFrame:
    """A DE table whose significant genes are ``genes`` in decreasing |log2FC|."""
    n = len(genes)
    return pd.DataFrame(
        {
            "target": target,
            "feature": genes + ["zz"],
            "log2_fold_change": [-(n - i) for i in range(n)] + [0.1],
            "p_value": [1e-4] * n + [0.9],
            "p_adj": [1e-3] * n + [0.9],
        }
    )


def test_de_overlap_tie_becomes_a_ranking_without_the_target():
    # truth of A: A, g1, g2 significant (k = 3); method X: A, g3, g4; method Y: g3, g1,
    # g4. With the target: X shares {A} -> 1/3, Y shares {g1} -> 1/3: a tie.
    # Without A: truth g1, g2 (k = 2); X's top 2 g3, g4 -> 0; Y's top 2 g3, g1 -> 1/2.
    real = _de("A", ["A", "g1", "g2"])
    x, y = _de("A", ["A", "g3", "g4"]), _de("A", ["g3", "g1", "g4"])
    for pred, with_t, without in ((x, 1 / 3, 0.0), (y, 1 / 3, 0.5)):
        assert vcc.de_overlaps(pred, real, ["A"])["A"] == pytest.approx(with_t)
        assert vcc.de_overlaps(pred, real, ["A"], exclude_target=True)[
            "A"
        ] == pytest.approx(without)


# --- the families on cells: which columns move, and the DE-weighted R2 ----------------
GENES6 = ["A", "B", "g1", "g2", "g3", "g4"]


@pytest.fixture(scope="module")
def cells() -> ad.AnnData:
    """12 cells per condition; A knocks its own gene down and raises g1, B knocks its
    gene down and lowers g2; C (target not measured) raises g3."""
    rng = np.random.default_rng(7)
    blocks, labels = [], []
    for condition in ["ctrl", "A", "B", "C"]:
        x = rng.gamma(4.0, 0.5, size=(12, len(GENES6)))
        if condition == "A":
            x[:, 0] *= 0.05
            x[:, 2] += 1.5
        elif condition == "B":
            x[:, 1] *= 0.1
            x[:, 3] *= 0.5
        elif condition == "C":
            x[:, 4] += 1.0
        blocks.append(x)
        labels += [condition] * 12
    obs = pd.DataFrame({"condition": labels}, index=[f"c{i}" for i in range(48)])
    return ad.AnnData(
        np.vstack(blocks).astype(np.float32), obs=obs, var=pd.DataFrame(index=GENES6)
    )


@pytest.fixture(scope="module")
def scored(cells):
    truth = pseudobulk(cells)
    split = Split(
        "toy", 0, "toy", {"ctrl": "train", "C": "train", "A": "test", "B": "test"}
    )
    rng = np.random.default_rng(3)
    values = truth.means.loc[["A", "B"], GENES6] + rng.normal(0, 0.3, (2, 6))
    pred = Predictions(values, "m", "toy", 0)
    cache: dict = {}
    out = {}
    for exclude in (False, True):
        inp = metric_input(
            pred, truth, split, GENES6, cells=cells, cache=cache, exclude_target=exclude
        )
        out[exclude] = score_families(inp, "all").set_index("condition")
    return truth, pred, out


def test_per_gene_averages_and_the_discrimination_score_do_not_move(scored):
    _, _, out = scored
    for column in ["mae", "weighted_mse", "discrimination_score_l1"]:
        assert out[True][column].tolist() == out[False][column].tolist(), column
    # the correlation against the training mean does move (targets A, B are measured)
    assert not np.allclose(
        out[True]["pearson_delta_perturbed_mean"],
        out[False]["pearson_delta_perturbed_mean"],
    )


def _r2_oracle(cells, truth, pred, condition: str, genes: list[str]) -> float:
    """scikit-learn's weighted R2 of the changes, with scPertEval's weights from
    scipy's Welch t of the condition's cells vs all other perturbed cells."""
    labels = cells.obs["condition"].to_numpy()
    cols = [GENES6.index(g) for g in genes]
    X = np.asarray(cells.X, dtype=np.float64)[:, cols]
    own, ref = X[labels == condition], X[(labels != condition) & (labels != "ctrl")]
    t = stats.ttest_ind(own, ref, equal_var=False).statistic
    a = (np.abs(t) - np.abs(t).min()) / (np.abs(t).max() - np.abs(t).min())
    w = a**2 / (a**2).sum()
    ctrl = truth.ctrl[genes].to_numpy()
    d = truth.means.loc[condition, genes].to_numpy() - ctrl
    d_hat = pred.values.loc[condition, genes].to_numpy() - ctrl
    return float(r2_score(d, d_hat, sample_weight=w))


@pytest.mark.parametrize("condition", ["A", "B"])
def test_r2_delta_weighted_drops_the_target_and_reweights(scored, cells, condition):
    truth, pred, out = scored
    kept = [g for g in GENES6 if g != condition]
    assert out[False].loc[condition, "r2_delta_weighted"] == pytest.approx(
        _r2_oracle(cells, truth, pred, condition, GENES6), rel=1e-9
    )
    assert out[True].loc[condition, "r2_delta_weighted"] == pytest.approx(
        _r2_oracle(cells, truth, pred, condition, kept), rel=1e-9
    )


# --- the benchmark API passes the option through --------------------------------------
# a double: genes A, B, C, g1, g2, g3, control 10; held out A+B with observed change
# (-5, -5, 0, 1, 2, 3), predicted (-5, -5, 3, 2, 1, 0). The training perturbations'
# changes sum to 0 gene by gene, so Systema's reference is the control.
# With the targets: x = (-5, -5, 3, 2, 1, 0), y = (-5, -5, 0, 1, 2, 3), means -2/3;
#   9 x centred: x (-13, -13, 11, 8, 5, 2), y (-13, -13, 2, 5, 8, 11);
#   sum xy = (169 + 169 + 22 + 40 + 40 + 22) / 81, sum x^2 = sum y^2 = 552 / 81
#   -> r = 462 / 552 = 77/92.
# Without A and B: (3, 2, 1, 0) against (0, 1, 2, 3): r = -1.
_DOUBLE = {
    "ctrl": [0, 0, 0, 0, 0, 0],
    "A": [-1, 0, 0, 1, 0, -1],
    "B": [0, -1, 1, 0, -1, 0],
    "C": [1, 0, -1, 0, 0, 1],
    "B+C": [0, 1, 0, -1, 1, 0],
    "A+B": [-5, -5, 0, 1, 2, 3],
    "A+C": [-2, 1, 2, 0, 1, 0],  # held out too (the leaderboard needs two)
}
GENES_DOUBLE = ["A", "B", "C", "g1", "g2", "g3"]
MINE = [-5, -5, 3, 2, 1, 0]


@pytest.fixture
def toy_task(monkeypatch):
    means = 10.0 + pd.DataFrame(_DOUBLE, index=GENES_DOUBLE, dtype=float).T
    truth = Pseudobulk(means, pd.Series(20, index=means.index), "toy")
    task = benchmark.Task(
        "toy_exclusion",
        "quick",
        "double",
        "hand-made",
        lambda: (None, truth, None),
        lambda pb: [
            holdout_split(pb.conditions, ["A+B", "A+C"], dataset="toy", seed=0)
        ],
    )
    monkeypatch.setitem(benchmark.TASKS, task.name, task)
    return task


@pytest.mark.parametrize("exclude, expected", [(False, 77 / 92), (True, -1.0)])
def test_run_passes_exclude_target_to_every_family(toy_task, exclude, expected):
    def mine(train, conditions):
        assert sorted(conditions) == ["A+B", "A+C"]
        values = 10.0 + np.array([MINE, [0, 0, 0, 1, 1, 1]], dtype=float)
        return pd.DataFrame(values, index=["A+B", "A+C"], columns=GENES_DOUBLE)

    result = benchmark.run(
        mine,
        task=toy_task.name,
        name="mine",
        progress=False,
        extras=False,
        metrics="systema",
        exclude_target=exclude,
    )
    rows = result.metrics.set_index(["method", "condition"])
    row = rows.loc[("mine", "A+B")]
    for column in ["pearson_delta", "r", "pearson_delta_perturbed_mean"]:
        assert row[column] == pytest.approx(expected, abs=1e-12), column
    # L2 over all six genes either way: sqrt(9 + 1 + 1 + 9)
    assert row["l2"] == pytest.approx(np.sqrt(20.0))


# --- chapter 9's comparison: rescoring a run and comparing the rankings ---------------
def test_score_excluded_rescores_the_run_without_targets(toy_task):
    from helpers.benchmark import exclusion, verdict

    mine = Predictions(
        pd.DataFrame(
            10.0 + np.array([MINE, [0, 0, 0, 1, 1, 1]], dtype=float),
            index=["A+B", "A+C"],
            columns=GENES_DOUBLE,
        ),
        "mine",
        "toy",
        0,
    )
    scored = verdict.score_all(toy_task, {"mine": [mine]}, families="systema")
    found = exclusion.measured_targets(toy_task)
    # targets A, B, C (of A, B, C, B+C, A+B, A+C) are all among the 6 genes
    assert found["measured"] == ["A", "B", "C"] and found["n_genes"] == 6
    assert found["held_out_measured"] == ["A+B", "A+C"]
    without = exclusion.score_excluded(toy_task, scored, families="systema")
    row = without.set_index(["method", "condition"]).loc[("mine", "A+B")]
    for column in ["pearson_delta", "r", "pearson_delta_perturbed_mean"]:
        assert row[column] == pytest.approx(-1.0, abs=1e-12), column
    before = scored.metrics.set_index(["method", "condition"]).loc[("mine", "A+B")]
    assert before["pearson_delta"] == pytest.approx(77 / 92, abs=1e-12)


def test_exclusion_ranks_by_hand():
    # two methods on two perturbations of one split. With the target: x beats y on
    # both (0.9 > 0.5, 0.8 > 0.4); without: y beats x on both (0.6 > 0.1, 0.7 > 0.2).
    # Every resample of the two perturbations keeps both orders: the best method
    # changes in all of them.
    keys = pd.DataFrame(
        {"method": ["x", "x", "y", "y"], "seed": 0, "condition": ["P", "Q"] * 2}
    )
    with_t = keys.assign(pearson_delta=[0.9, 0.8, 0.5, 0.4], l2=1.0)
    without = keys.assign(pearson_delta=[0.1, 0.2, 0.6, 0.7])
    from helpers.benchmark import exclusion

    out = exclusion.exclusion_ranks(with_t, without, n_boot=50).set_index("method")
    assert out["rank_with"].to_dict() == {"x": 1.0, "y": 2.0}
    assert out["rank_without"].to_dict() == {"x": 2.0, "y": 1.0}
    assert out.loc["x", "mean_with"] == pytest.approx(0.85)
    assert out.loc["y", "mean_without"] == pytest.approx(0.65)
    assert (out["best_with"] == "x").all() and (out["best_without"] == "y").all()
    assert (out["support_change"] == 1.0).all() and (out["result"] == "changes").all()
    assert (out["support_order_change"] == 1.0).all()
    # the same values both ways: the best never changes
    same = exclusion.exclusion_ranks(with_t, with_t[without.columns], n_boot=50)
    assert (same["support_change"] == 0.0).all() and (same["result"] == "stays").all()
    assert (same["support_order_change"] == 0.0).all()


@pytest.fixture
def cell_task(monkeypatch):
    """A double screen with cells: targets A, B, C measured, D and E not; held out
    A+B, B+C (measured targets) and D+E (none measured)."""
    from helpers.benchmark.tasks import Task

    genes = ["A", "B", "C", "g1", "g2", "g3"]
    rng = np.random.default_rng(11)
    blocks, labels = [], []
    conditions = ["ctrl", "A", "B", "C", "D", "E", "A+B", "B+C", "D+E"]
    for k, condition in enumerate(conditions):
        x = rng.gamma(4.0, 0.5, size=(10, len(genes)))
        for g in condition.split("+"):
            if g in genes:
                x[:, genes.index(g)] *= 0.1  # the target knocked down
        x[:, 3 + k % 3] += 0.5 * (condition != "ctrl")
        blocks.append(x)
        labels += [condition] * 10
    obs = pd.DataFrame({"condition": labels}, index=[f"c{i}" for i in range(90)])
    adata = ad.AnnData(
        np.vstack(blocks).astype(np.float32), obs=obs, var=pd.DataFrame(index=genes)
    )
    truth = pseudobulk(adata)
    task = Task(
        "toy_cells",
        "quick",
        "double",
        "hand-made",
        lambda: (adata, truth, None),
        lambda pb: [
            holdout_split(pb.conditions, ["A+B", "B+C", "D+E"], dataset="toy", seed=1)
        ],
    )
    monkeypatch.setitem(benchmark.TASKS, task.name, task)
    return task


def test_score_excluded_equals_rescoring_every_condition(cell_task):
    """Rescoring only the conditions with a measured target (calibrated, vcc) gives
    the same table as rescoring every condition directly."""
    from helpers.benchmark import exclusion, verdict
    from helpers.ceilings import evaluation_truth

    scored = verdict.score_all(cell_task, families="all")
    got = exclusion.score_excluded(cell_task, scored, families="all")
    split = cell_task.splits[0]
    genes = cell_task.truth.genes
    reference, cells = evaluation_truth(cell_task.truth, cell_task.adata(), split)
    rows = []
    for pred in scored.predictions[split.seed].values():
        inp = metric_input(
            pred, reference, split, genes, cells=cells, exclude_target=True
        )
        table = score_families(inp, "all")
        paper = evaluate(
            pred, reference, split, genes=genes, allow_missing=True, exclude_target=True
        )
        rows.append(table.merge(paper, on=["method", "seed", "condition"]))
    direct = pd.concat(rows).set_index(["method", "condition"])
    got = got.set_index(["method", "condition"])
    assert len(got) == len(direct) and len(got) >= 3 * 3
    from helpers.metrics import family_names

    honouring = exclusion.HONOURING
    names = ["paper", *family_names("all")]
    for column in [c for n in names for c in honouring.get(n, [])]:
        pd.testing.assert_series_equal(
            got[column], direct.loc[got.index, column], check_names=False
        )
    # D+E has no measured target: its values are those scored with the targets
    before = scored.metrics.set_index(["method", "condition"])
    de = got.xs("D+E", level="condition")
    assert np.allclose(
        de["de_overlap_vcc"],
        before.xs("D+E", level="condition").loc[de.index, "de_overlap_vcc"],
    )


def _input(pred, obs, genes, *, exclude, cells=None):
    from helpers.metrics.inputs import MetricInput

    genes = pd.Index(genes)
    obs = obs.astype(float)
    obs.columns = genes
    return MetricInput(
        method="m",
        seed=1,
        genes=genes,
        pred=pd.DataFrame(pred, index=obs.index, columns=genes, dtype=float),
        obs=obs,
        ctrl=pd.Series(0.0, index=genes),
        train=pd.DataFrame([[0.0] * len(genes)], index=["C"], columns=genes),
        cells=cells,
        exclude_target=exclude,
    )


def test_retrieval_rank_flips_when_the_targets_leave_the_panel():
    """Genes A, B, x, y; A's prediction gets its target right and the rest like B.
    With the target: cor(pred_A, obs_A) = 16.75 / (...) > 0 > cor(pred_A, obs_B) (the
    centred dot products, by hand, are 16.75 and -4.25), rank 1, normalised 0. Without
    A and B (panel scope): pred_A = (-1, 1), obs_A = (1, -1), obs_B = (-1, 1): the
    correlations are -1 and 1, rank 2, normalised 1."""
    from helpers.metrics import retrieval

    genes = ["A", "B", "x", "y"]
    obs = {"A": [5, 0, 1, -1], "B": [0, 5, -1, 1]}
    pred = [[5, 0, -1, 1], [0, 5, -1, 1]]
    with_target = retrieval.score(
        _input(pred, pd.DataFrame(obs).T, genes, exclude=False)
    )
    without = retrieval.score(_input(pred, pd.DataFrame(obs).T, genes, exclude=True))
    assert with_target.loc["A", "rank_vs_control"] == 0.0
    assert without.loc["A", "rank_vs_control"] == 1.0
    # B's prediction is right on every gene: first either way
    assert with_target.loc["B", "rank_vs_control"] == 0.0
    assert without.loc["B", "rank_vs_control"] == 0.0


def test_de_overlap_leaves_the_own_target_out_of_both_lists():
    """25 genes: the target A, g1..g19, z1..z4, g20. In A's cells A rises most, then
    g1..g20 by decreasing steps, the z genes not at all. The prediction moves A and
    g1..g19 only. With the target both top-20 lists are {A, g1..g19}: overlap 1.
    Without it the observed list is g1..g20 and the predicted one g1..g19 plus the first
    unchanged gene in gene order (z1): overlap 19/20."""
    import anndata as ad

    from helpers.metrics import de_agreement

    rng = np.random.default_rng(0)
    genes = ["A", *(f"g{i}" for i in range(1, 20)), "z1", "z2", "z3", "z4", "g20"]
    shift = {"A": 6.0, **{f"g{i}": 4.0 - 0.1 * i for i in range(1, 21)}}
    up = np.array([shift.get(g, 0.0) for g in genes])
    # one noise pattern for every gene: equal variances, so the t statistics (and
    # the ranks) follow the shifts
    ctrl_cells = np.tile(rng.normal(1.0, 0.1, (60, 1)), (1, len(genes)))
    a_cells = np.tile(rng.normal(1.0, 0.1, (60, 1)), (1, len(genes))) + up
    cells = ad.AnnData(
        np.vstack([ctrl_cells, a_cells]),
        obs=pd.DataFrame(
            {"condition": ["ctrl"] * 60 + ["A"] * 60},
            index=[f"c{i}" for i in range(120)],
        ),
        var=pd.DataFrame(index=genes),
    )
    predicted = np.where([g != "g20" for g in genes], up, 0.0)
    obs = pd.DataFrame([up], index=["A"], columns=genes)
    for exclude, expected in ((False, 1.0), (True, 19 / 20)):
        inp = _input([predicted], obs, genes, exclude=exclude, cells=cells)
        assert de_agreement.score(inp).loc["A", "de_overlap"] == pytest.approx(expected)
