"""The command line as a model developer meets it: every unreadable or unusual input
gets one line that names the problem and the fix (exit 1), never a traceback; a valid
submission gets no noise.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from helpers import benchmark
from helpers.predictions import Predictions

ROOT = Path(__file__).resolve().parents[2]
TASK = "norman_subset_doubles"


@pytest.fixture(scope="module")
def valid(tmp_path_factory):
    """The additive baseline's predictions for the task's held-out doubles, as the
    contract's CSV."""
    task = benchmark.get_task(TASK)
    split = task.splits[0]
    pred = benchmark.BASELINES["additive"](
        task.truth.subset(split.train), split.held_out
    )
    pred = Predictions(pred.values, "mine", task.truth.dataset, split.seed)
    path = tmp_path_factory.mktemp("cli") / "predictions.csv"
    pred.save(path)
    return path


def score(path, capsys, *extra):
    code = benchmark.main(
        ["--task", TASK, "--predictions", str(path), "--no-extras", *extra]
    )
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_folder_is_named_as_a_folder(tmp_path, capsys):
    code, _, err = score(tmp_path, capsys)
    assert code == 1 and "is a folder, not a predictions file" in err


def test_a_folder_named_h5ad_is_named_as_a_folder(tmp_path, capsys):
    folder = tmp_path / "cells.h5ad"
    folder.mkdir()
    code, _, err = score(folder, capsys)
    assert code == 1 and "is a folder" in err


def test_a_folder_from_the_shell_gives_one_line_and_no_traceback(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "helpers.benchmark",
            "--task",
            TASK,
            "--predictions",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0, done.stderr


@pytest.mark.parametrize("decimal", [".", ","])
def test_semicolon_separated_files_are_named(valid, tmp_path, capsys, decimal):
    text = valid.read_text().replace(",", ";")
    if decimal == ",":
        text = text.replace(".", ",")
    path = tmp_path / "european.csv"
    path.write_text(text)
    code, _, err = score(path, capsys)
    assert code == 1
    assert "is separated by ';', not by commas" in err and "decimal mark" in err


def test_tab_separated_files_are_named(valid, tmp_path, capsys):
    path = tmp_path / "tabs.csv"
    path.write_text(valid.read_text().replace(",", "\t"))
    code, _, err = score(path, capsys)
    assert code == 1 and "is separated by '\\t'" in err


def test_decimal_commas_in_a_comma_separated_file(valid, tmp_path, capsys):
    lines = valid.read_text().splitlines()
    body = [
        line[::-1].replace(".", ",", 1)[::-1] for line in lines[1:]
    ]  # the prediction's point
    path = tmp_path / "decimal_commas.csv"
    path.write_text("\n".join([lines[0], *body]) + "\n")
    code, _, err = score(path, capsys)
    assert code == 1 and "decimal commas" in err


@pytest.mark.parametrize("missing", ["", "n/a", "NA"])
def test_missing_values_are_named_as_missing_values(valid, tmp_path, capsys, missing):
    lines = valid.read_text().splitlines()
    fields = lines[3].split(",")
    fields[-1] = missing
    lines[3] = ",".join(fields)
    path = tmp_path / "missing.csv"
    path.write_text("\n".join(lines) + "\n")
    code, _, err = score(path, capsys)
    assert code == 1
    assert "1 missing values (empty cells or n/a) in the 'prediction' column" in err
    assert f"line 4: condition {fields[3]!r}, gene {fields[4]!r}" in err


def test_text_in_the_prediction_column(valid, tmp_path, capsys):
    lines = valid.read_text().splitlines()
    fields = lines[2].split(",")
    fields[-1] = "high"
    lines[2] = ",".join(fields)
    path = tmp_path / "text.csv"
    path.write_text("\n".join(lines) + "\n")
    code, _, err = score(path, capsys)
    assert code == 1 and "are not numbers, e.g. line 3: 'high'" in err


def test_a_valid_submission_lists_an_inapplicable_method_once_without_warnings(
    valid, capsys
):
    code, out, err = score(valid, capsys)
    assert code == 0, err
    assert "WARNING: linear" not in out
    assert out.count("not applicable on this task: linear") == 1
    board = out.split("split audit:")[0].splitlines()[2:]
    assert board and not any(line.split()[0] == "linear" for line in board)


def test_predictions_equal_to_the_held_out_truth_are_flagged(tmp_path, capsys):
    task = benchmark.get_task(TASK)
    split = task.splits[0]
    echo = Predictions(
        task.truth.means.loc[split.held_out], "echo", task.truth.dataset, split.seed
    )
    path = tmp_path / "echo.csv"
    echo.save(path)
    code, out, _ = score(path, capsys)
    assert code == 0
    assert (
        f"WARNING: echo, seed {split.seed}: the predictions of "
        f"{len(split.held_out)} of "
        f"{len(split.held_out)} held-out conditions equal the observed pseudobulks"
    ) in out
    assert "leaked" in out


def test_help_documents_the_exit_codes(capsys):
    with pytest.raises(SystemExit) as exit_:
        benchmark.main(["--help"])
    assert exit_.value.code == 0
    assert "exit codes: 0 scored; 1 bad input" in capsys.readouterr().out
