"""The sealed class challenge (helpers.course.challenge): the split stays sealed, the
bundle is what a student needs, submissions are read in chapter 7's formats and a
broken one gets a status row. Oracles: the baselines rebuilt by hand from the
students' bundle (a file holding the additive baseline must score exactly as the
scorer's own additive row; the control profile for every condition as no_change)."""

from __future__ import annotations

import json

import anndata as ad
import pandas as pd
import pytest

from helpers.course import challenge
from helpers.course.cli import main
from helpers.predictions import Predictions

SMALL = dict(n_genes=300, n_single=30, n_double=40, cells_per_condition=30)


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    root = tmp_path_factory.mktemp("challenge")
    spec = challenge.make(root, seed=5, simulate=SMALL)
    return root, spec


@pytest.fixture(scope="module")
def scored(made):
    root, spec = made
    train, conditions = challenge.load_bundle(root / "students")
    subs = root / "subs"
    subs.mkdir()
    ctrl = train.pseudobulk.ctrl
    # additive by hand: ctrl + (A - ctrl) + (B - ctrl)
    means = train.pseudobulk.means
    additive = pd.DataFrame(
        [means.loc[c.split("+")].sum() - ctrl for c in conditions], index=conditions
    )
    no_change = pd.DataFrame([ctrl] * len(conditions), index=conditions)
    Predictions(additive, "a", train.dataset, train.seed).save(subs / "alice.csv")
    Predictions(no_change, "b", train.dataset, train.seed).save(subs / "bob.csv")
    Predictions(additive, "c", train.dataset, 7).save(subs / "carol.csv")
    (subs / "dave.csv").write_text("not;a;predictions;file\n1;2;3;4\n")
    (subs / "erin.txt").write_text("hello")
    out = root / "out"
    code = main(
        ["challenge", "score", str(subs), "--sealed", str(root / "sealed"),
         "--out", str(out), "--n-top", "200"]
    )  # fmt: skip
    assert code == 0
    return pd.read_csv(out / "leaderboard.csv"), out, conditions


def test_the_bundle_holds_no_held_out_condition(made):
    root, spec = made
    held = set(spec["held_out"])
    bundle = root / "students"
    train = pd.read_csv(bundle / "train_pseudobulk.csv.gz", index_col=0)
    cells = ad.read_h5ad(bundle / "train_cells.h5ad")
    assert held and not held & set(train.index)
    assert not held & set(cells.obs["condition"].astype(str))
    assert (bundle / "conditions_to_predict.txt").read_text().split() == list(
        spec["held_out"]
    )
    truth = pd.read_csv(root / "sealed" / "truth_held_out.csv.gz", index_col=0)
    assert list(truth.index) == spec["held_out"]
    for name in ("README.md", "challenge.json"):
        assert "SYNTHETIC" in (bundle / name).read_text()
    assert "truth" not in (bundle / "challenge.json").read_text()


def test_the_secret_seed_draws_another_screen_than_the_books(made, tmp_path):
    root, spec = made
    other = challenge.make(tmp_path, seed=6, simulate=SMALL)
    assert other["truth_sha256"] != spec["truth_sha256"]
    again = challenge.make(tmp_path / "again", seed=5, simulate=SMALL)
    assert again["truth_sha256"] == spec["truth_sha256"]
    assert json.loads((root / "sealed" / "challenge.json").read_text()) == spec


def test_hand_made_baselines_score_as_the_scorers_own_rows(scored):
    board, _, conditions = scored
    row = board.set_index(board["submission"].fillna(board["method"]))
    assert row.loc["alice.csv", "mean_l2"] == pytest.approx(
        row.loc["additive", "mean_l2"], rel=1e-9
    )
    assert row.loc["bob.csv", "mean_l2"] == pytest.approx(
        row.loc["no_change", "mean_l2"], rel=1e-9
    )
    assert row.loc["alice.csv", "n"] == len(conditions)
    ranked = board.dropna(subset=["rank"])
    assert list(ranked["mean_l2"]) == sorted(ranked["mean_l2"])
    assert (ranked["l2_lower"] <= ranked["mean_l2"]).all()
    assert (ranked["mean_l2"] <= ranked["l2_upper"]).all()
    assert {"no_change", "additive", "mean", "linear"} <= set(board["method"])
    assert "vcc2026_score" in board.columns  # metrics=all


def test_broken_submissions_get_a_status_row_each(scored):
    board, _, _ = scored
    status = board.set_index("submission")["status"].dropna()
    assert status["carol.csv"].startswith("error") and "seed" in status["carol.csv"]
    assert status["dave.csv"].startswith("error")
    assert status["erin.txt"].startswith("error") and ".csv" in status["erin.txt"]
    assert status["alice.csv"].startswith("ok")
    assert board.loc[board["submission"] == "dave.csv", "rank"].isna().all()


def test_the_page_is_self_contained_and_labelled(scored):
    board, out, _ = scored
    page = (out / "leaderboard.html").read_text()
    assert "SYNTHETIC" in page and "95%" in page
    assert "<script" not in page and "http" not in page
    assert (board["data"].str.contains("SYNTHETIC")).all()
    assert "alice.csv" in page and "dave.csv" in page


def test_a_missing_sealed_folder_is_one_line(tmp_path, capsys):
    code = main(["challenge", "score", str(tmp_path), "--sealed", str(tmp_path),
                 "--out", str(tmp_path / "o")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "challenge make" in err


def test_a_negative_seed_gets_one_line(tmp_path, capsys):
    from helpers.course import cli

    code = cli.main(["challenge", "make", "--out", str(tmp_path / "c"), "--seed", "-3"])
    assert code != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "error: seed must be a non-negative integer (the secret seed of the screen), "
        "got -3."
    ]
    assert not (tmp_path / "c").exists()
