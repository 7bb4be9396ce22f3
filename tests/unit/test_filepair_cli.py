"""``python -m helpers.benchmark score``: a file pair scored without a task.

Tolerances: exact for the hand-worked case; 1e-6 (1e-5 for the DE-weighted R2, a
ratio of small sums) where the book keeps log-normalised cells in float32, as its data
files do, and the oracle computes them in float64.

Oracles: a 3-gene case worked by hand (L2, Pearson delta, r); numpy's group means of
``log1p(counts / total * 1e4)`` for the counts path (MAE, L2); the family modules'
own ``score`` on a MetricInput built here from those numpy means (the wiring); the
issue's list of cell-eval2's six names for ``vcc2026``. Bad input: one line and exit 1,
one test per case; usage errors exit 2. The files are made here from a seeded
generator.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from helpers.benchmark import cli
from helpers.benchmark.cli import main
from helpers.metrics import MetricInput, calibrated, vcc
from helpers.predictions import PredictionError

ROOT = Path(__file__).resolve().parents[2]
#: cell-eval2's names of the six vcc2026 metrics (issue 30), read by name
VCC2026_COLUMNS = [
    "pds_cosine",
    "expr_mse_unbiased_capped_norm",
    "de_wilcoxon_lfc_nmae",
    "de_wilcoxon_direction_fidelity_yield_raw",
    "de_wilcoxon_direction_reach_raw",
    "de_wilcoxon_sig_jaccard",
]


def _adata(X, labels, genes, *, col="target") -> ad.AnnData:
    obs = pd.DataFrame({col: labels}, index=[f"c{i}" for i in range(len(labels))])
    return ad.AnnData(X, obs=obs, var=pd.DataFrame(index=genes))


def _counts(seed: int, effect: float) -> ad.AnnData:
    """Poisson counts: 30 genes, 60 control cells, perturbations G0..G3 (15 cells
    each) raising their own gene 4-fold and one other gene ``effect``-fold."""
    rng = np.random.default_rng(seed)
    genes = [f"G{i}" for i in range(30)]
    labels = ["non-targeting"] * 60 + [f"G{k}" for k in range(4) for _ in range(15)]
    base = rng.gamma(2.0, 2.0, size=30)
    rows = []
    for label in labels:
        mu = base.copy()
        if label != "non-targeting":
            k = int(label[1:])
            mu[k] *= 4.0
            mu[(5 * k + 7) % 30] *= effect
        rows.append(rng.poisson(mu))
    return _adata(sp.csr_matrix(np.array(rows, dtype=np.float32)), labels, genes)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The hand-worked 3-gene pair (log-normalised, obs 'guide', control 'NTC') and a
    seeded counts pair."""
    folder = tmp_path_factory.mktemp("filepair")
    genes = ["X1", "X2", "X3"]
    real = np.array(
        [
            [1.25, 2.25, 3.25],  # NTC: mean c = (2.25, 2.25, 2.25)
            [3.25, 2.25, 1.25],
            [2.75, 2.25, 1.75],  # A: mean y = (3.25, 2.25, 1.25)
            [3.75, 2.25, 0.75],
            [2.5, 2.5, 2.5],  # B
            [2.0, 3.0, 2.5],
        ]
    )
    pred = np.array(
        [
            [2.25, 2.25, 2.25],  # NTC (not scored by the book's families)
            [2.25, 2.25, 2.25],
            [4.0, 2.0, 1.0],  # A: mean y_hat = (4.25, 2.25, 1.25)
            [4.5, 2.5, 1.5],
            [2.5, 2.5, 2.5],  # B
            [2.5, 2.5, 2.5],
        ]
    )
    labels = ["NTC", "NTC", "A", "A", "B", "B"]
    paths = {}
    for role, X in (("real", real), ("pred", pred)):
        paths[f"hand_{role}"] = folder / f"hand_{role}.h5ad"
        _adata(X, labels, genes, col="guide").write_h5ad(paths[f"hand_{role}"])
    counts = {"real": _counts(1, 3.0), "pred": _counts(2, 2.0)}
    for role, adata in counts.items():
        paths[role] = folder / f"{role}.h5ad"
        adata.write_h5ad(paths[role])
    paths["folder"] = folder
    paths["counts"] = counts
    return paths


def run_score(capsys, files, tmp_path, *extra, real=None, pred=None):
    code = main(
        [
            "score",
            "--real",
            str(real or files["real"]),
            "--pred",
            str(pred or files["pred"]),
            "--out",
            str(tmp_path),
            *extra,
        ]
    )
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def scored_all(files):
    """``--metrics all`` on the counts pair, run once (in process)."""
    out = files["folder"] / "all"
    assert (
        main(
            [
                "score",
                "--real",
                str(files["real"]),
                "--pred",
                str(files["pred"]),
                "--metrics",
                "all",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    return pd.read_csv(out / "metrics.csv")


def _numpy_pseudobulk(adata: ad.AnnData) -> pd.DataFrame:
    """Group means of log1p(counts / total * 1e4), by numpy (the oracle)."""
    X = adata.X.toarray().astype(np.float64)
    lognorm = np.log1p(X / X.sum(axis=1, keepdims=True) * 1e4)
    labels = adata.obs["target"].to_numpy()
    groups = sorted(set(labels))
    means = np.vstack([lognorm[labels == g].mean(axis=0) for g in groups])
    return pd.DataFrame(means, index=groups, columns=adata.var_names)


# --- values -------------------------------------------------------------------------


def test_paper_metrics_equal_a_hand_worked_three_gene_case(files, tmp_path, capsys):
    code, out, err = run_score(
        capsys,
        files,
        tmp_path,
        "--pert-col",
        "guide",
        "--control",
        "NTC",
        real=files["hand_real"],
        pred=files["hand_pred"],
    )
    assert code == 0, err
    table = pd.read_csv(tmp_path / "metrics.csv").set_index("perturbation")
    assert list(table.index) == ["A", "B"]
    assert list(table.columns) == ["l2", "pearson_delta", "r"]
    # A: d = y - c = (1, 0, -1), d_hat = (2, 0, -1): L2 = |(1, 0, 0)| = 1;
    # centred d_hat = (5, -1, -4) / 3, so cor = 3 / (sqrt(2) sqrt(42) / 3) = 9/sqrt(84)
    assert table.loc["A", "l2"] == pytest.approx(1.0, abs=1e-12)
    assert table.loc["A", "pearson_delta"] == pytest.approx(9 / np.sqrt(84), abs=1e-12)
    # y and y_hat centred are d and d_hat centred: the same correlation
    assert table.loc["A", "r"] == pytest.approx(9 / np.sqrt(84), abs=1e-12)
    assert "log-normalised" in out and "metrics.csv" in out


def test_the_pred_files_gene_order_does_not_matter(files, tmp_path, capsys):
    pred = ad.read_h5ad(files["hand_pred"])[:, ["X3", "X1", "X2"]].copy()
    path = _write(tmp_path, "shuffled.h5ad", pred)
    args = ("--pert-col", "guide", "--control", "NTC")
    code, _, err = run_score(
        capsys, files, tmp_path / "a", *args, real=files["hand_real"], pred=path
    )
    assert code == 0, err
    table = pd.read_csv(tmp_path / "a" / "metrics.csv").set_index("perturbation")
    assert table.loc["A", "l2"] == pytest.approx(1.0, abs=1e-12)
    assert table.loc["A", "pearson_delta"] == pytest.approx(9 / np.sqrt(84), abs=1e-12)


def test_counts_are_log_normalised_per_10k_before_the_pseudobulk(files, scored_all):
    real = _numpy_pseudobulk(files["counts"]["real"])
    pred = _numpy_pseudobulk(files["counts"]["pred"])
    perts = ["G0", "G1", "G2", "G3"]
    table = scored_all.set_index("perturbation")
    assert list(table.index) == perts
    diff = pred.loc[perts] - real.loc[perts]
    np.testing.assert_allclose(table["mae"], diff.abs().mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(table["l2"], np.sqrt((diff**2).sum(axis=1)), rtol=1e-6)


def test_the_families_get_what_their_modules_score_on_the_same_pseudobulks(
    files, scored_all
):
    """The wiring: the family modules' ``score`` on a MetricInput built here from
    numpy's pseudobulks gives the CLI's columns."""
    real_cells = files["counts"]["real"]
    real = _numpy_pseudobulk(real_cells)
    pred = _numpy_pseudobulk(files["counts"]["pred"])
    perts = ["G0", "G1", "G2", "G3"]
    X = real_cells.X.toarray().astype(np.float64)
    labels = real_cells.obs["target"].astype(str).replace({"non-targeting": "ctrl"})
    cells = ad.AnnData(
        np.log1p(X / X.sum(axis=1, keepdims=True) * 1e4),
        obs=pd.DataFrame(
            {"condition": pd.Categorical(labels.to_numpy())},
            index=real_cells.obs_names,
        ),
        var=pd.DataFrame(index=real_cells.var_names),
    )
    inp = MetricInput(
        method="prediction",
        seed=0,
        genes=real.columns,
        pred=pred.loc[perts],
        obs=real.loc[perts],
        ctrl=real.loc["non-targeting"],
        train=real.iloc[:0],
        cells=cells,
    )
    expected = calibrated.score(inp).join(vcc.score(inp))
    got = scored_all.set_index("perturbation")[expected.columns]
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=1e-5)


def test_all_scores_only_the_families_that_run_without_a_task(scored_all):
    columns = set(scored_all.columns)
    assert {"l2", "weighted_mse", "mae", "de_overlap_vcc"} <= columns
    # refused: they need a task's training perturbations
    assert not {"pearson_delta_perturbed_mean", "centroid_accuracy"} & columns


def test_vcc2026_columns_carry_cell_eval2s_names(files, tmp_path, capsys):
    from helpers.metrics import vcc2026

    code, _, err = run_score(capsys, files, tmp_path, "--metrics", "vcc2026")
    assert code == 0, err
    table = pd.read_csv(tmp_path / "metrics.csv").set_index("perturbation")
    assert list(table.columns) == VCC2026_COLUMNS
    expected = vcc2026.score_anndata(
        files["counts"]["real"],
        files["counts"]["pred"],
        pert_col="target",
        control="non-targeting",
        exclude_target=True,
    )
    for name in VCC2026_COLUMNS:
        np.testing.assert_allclose(
            table[name], expected.loc[table.index, name], rtol=1e-9, equal_nan=True
        )


# --- options ------------------------------------------------------------------------


def test_the_target_gene_flag_reaches_the_families(files, tmp_path, capsys):
    """G0..G3 are measured genes: leaving each perturbation's target out changes the
    DE-weighted R2, and the two flags give the family's own score with and without
    the option (the families' exclusion itself is tested in test_exclude_target)."""
    tables = {}
    for flag in ("--exclude-target", "--no-exclude-target"):
        code, _, err = run_score(
            capsys, files, tmp_path / flag, "--metrics", "calibrated", flag
        )
        assert code == 0, err
        tables[flag] = pd.read_csv(tmp_path / flag / "metrics.csv")
        assert len(tables[flag]) == 4
    on, off = (t["r2_delta_weighted"] for t in tables.values())
    assert not np.allclose(on, off)
    assert calibrated.COLUMNS == list(tables["--exclude-target"].columns[1:])


def test_a_pred_file_without_control_cells_is_scored(files, tmp_path, capsys):
    """The predicted control cells are never scored: leaving them out changes
    nothing."""
    pred = files["counts"]["pred"]
    path = _write(tmp_path, "p.h5ad", pred[pred.obs["target"] != "non-targeting"])
    code, _, err = run_score(capsys, files, tmp_path / "a", "--metrics", "paper")
    assert code == 0, err
    code, _, err = run_score(
        capsys, files, tmp_path / "b", "--metrics", "paper", pred=path
    )
    assert code == 0, err
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "a" / "metrics.csv"),
        pd.read_csv(tmp_path / "b" / "metrics.csv"),
    )


def test_task_mode_passes_the_flag_to_run_only_when_set(monkeypatch, capsys):
    seen = []

    def fake_run(**kwargs):
        seen.append(kwargs)
        raise PredictionError("stop here")

    monkeypatch.setattr(cli, "run", fake_run)
    argv = ["--task", "x", "--predictions", "cells.h5ad"]
    assert main(argv) == 1 and main([*argv, "--exclude-target"]) == 1
    assert "exclude_target" not in seen[0] and seen[1]["exclude_target"] is True
    capsys.readouterr()


# --- bad input: one line, exit 1 ----------------------------------------------------


def _write(folder, name, adata) -> Path:
    path = Path(folder) / name
    adata.write_h5ad(path)
    return path


def _bad(files, tmp_path, case):
    """(real, pred, extra arguments, words the one line must hold) of one case."""
    real = files["counts"]["real"]
    pred = files["counts"]["pred"]
    if case == "different genes":
        other = pred.copy()
        other.var_names = [f"H{i}" for i in range(other.n_vars)]
        return None, _write(tmp_path, "p.h5ad", other), [], ["different genes"]
    if case == "no control cells":
        return (
            _write(tmp_path, "r.h5ad", real[real.obs["target"] != "non-targeting"]),
            None,
            [],
            ["no control cells", "non-targeting"],
        )
    if case == "non-integer counts for vcc2026":
        other = real.copy()
        other.X = np.log1p(other.X)  # log values, as a log-normalised file holds
        path = _write(tmp_path, "r.h5ad", other)
        return path, None, ["--metrics", "vcc2026"], ["vcc2026", "integer counts"]
    if case == "fractional counts":
        other = pred.copy()
        other.X = other.X.toarray() * 1.01 + 0.3  # neither counts nor log1p(CP10k)
        path = _write(tmp_path, "p.h5ad", other)
        return None, path, [], ["non-integer values", "log1p(counts / total * 1e4)"]
    if case == "no X":
        other = ad.AnnData(obs=real.obs.copy(), var=real.var.copy())
        other.layers["counts"] = real.X.copy()
        return _write(tmp_path, "r.h5ad", other), None, [], ["no X", "layers"]
    if case == "unlabelled cells":
        other = real.copy()
        other.obs["target"] = other.obs["target"].astype(object)
        other.obs.iloc[:3, other.obs.columns.get_loc("target")] = None
        path = _write(tmp_path, "r.h5ad", other)
        return path, None, [], ["3 cells without a label", "'target'"]
    if case == "negative counts":
        other = real.copy()
        other.X = other.X.toarray() - 1.0
        path = _write(tmp_path, "r.h5ad", other)
        return path, None, ["--metrics", "vcc2026"], ["negative values"]
    if case == "perturbation missing from pred":
        path = _write(tmp_path, "p.h5ad", pred[pred.obs["target"] != "G2"])
        return None, path, [], ["no predicted cells", "G2"]
    if case == "empty file":
        return _write(tmp_path, "r.h5ad", real[:0]), None, [], ["empty", "0 cells"]
    if case == "not an h5ad":
        path = Path(tmp_path) / "r.h5ad"
        path.write_text("perturbation,gene\nA,1\n")
        return path, None, [], ["not a readable .h5ad"]
    if case == "no such file":
        return Path(tmp_path) / "missing.h5ad", None, [], ["No file at"]
    if case == "missing pert column":
        return None, None, ["--pert-col", "gene_target"], ["no obs column"]
    if case == "family needs a task":
        return None, None, ["--metrics", "systema"], ["systema", "training"]
    raise AssertionError(case)


@pytest.mark.parametrize(
    "case",
    [
        "different genes",
        "no control cells",
        "non-integer counts for vcc2026",
        "fractional counts",
        "no X",
        "unlabelled cells",
        "negative counts",
        "perturbation missing from pred",
        "empty file",
        "not an h5ad",
        "no such file",
        "missing pert column",
        "family needs a task",
    ],
)
def test_bad_input_gets_one_line_and_exit_1(files, tmp_path, capsys, case):
    real, pred, extra, words = _bad(files, tmp_path, case)
    code, out, err = run_score(
        capsys, files, tmp_path / "out", *extra, real=real, pred=pred
    )
    assert code == 1
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for word in words:
        assert word in err, err
    assert not (tmp_path / "out" / "metrics.csv").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["--pred", "p.h5ad", "--out", "o"],  # no --real
        ["--real", "r.h5ad", "--pred", "p.h5ad", "--out", "o", "--metrics", "nope"],
    ],
    ids=["missing --real", "unknown family"],
)
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["score", *argv])
    assert stop.value.code == 2
    capsys.readouterr()


def test_the_shell_command_scores_a_file_pair(files, tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "helpers.benchmark",
            "score",
            "--real",
            str(files["hand_real"]),
            "--pred",
            str(files["hand_pred"]),
            "--pert-col",
            "guide",
            "--control",
            "NTC",
            "--out",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(tmp_path / "metrics.csv")
    assert list(table["perturbation"]) == ["A", "B"]
