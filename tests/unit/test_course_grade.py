"""The grading engine and the exercises' checks (helpers.course.grade / checks).

Chapter 1 is graded for real, each notebook in its own process: the reference
solution passes, the blank student copy fails, another exercise's solution pasted in
and a running answer with a wrong value fail, a crash, a timeout and tampered checks
get their status. The chapter's code before the exercises runs once (saved
namespace, module fixture). Chapters 2-3: their blank copies fail. Independent
oracles on the expected values: Jensen's inequality (chapter 1, exercise 2: the log
of a mean is never below the mean of the logs) and the additive baseline's
definition (chapter 2, exercise 1: the difference is 0).
"""

from __future__ import annotations

import copy
import json

import pandas as pd
import pytest

from helpers.course import checks
from helpers.course.cli import main
from helpers.course.exercises import CHECK_TEMPLATE, EXERCISES, SETUP_TEMPLATE
from helpers.course.expected import expected_path
from helpers.course.grade import COLUMNS, grade_folder, grade_notebook
from helpers.results import book_root

ROOT = book_root()


def _load(path):
    return json.loads(path.read_text())


def _solutions(nb):
    return [
        c for c in nb["cells"] if "".join(c["source"]).lstrip().startswith("# Solu")
    ]


def _code(nb, text):
    return [c for c in nb["cells"] if "".join(c["source"]).strip() == text][0]


def _write(folder, name, nb):
    (folder / f"{name}.ipynb").write_text(json.dumps(nb))


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    pytest.importorskip("dill", reason="dill (from otter-grader) saves the namespace")
    subs = tmp_path_factory.mktemp("subs")
    cache = tmp_path_factory.mktemp("cache")
    full = _load(ROOT / "notebooks" / "01_data.ipynb")
    _write(subs, "right", full)
    _write(subs, "blank", _load(ROOT / "student" / "01_data.ipynb"))
    wrong = copy.deepcopy(full)
    ex1, ex2, ex3 = _solutions(wrong)
    ex2["source"] = ex1["source"]  # exercise 1's solution pasted into exercise 2
    ex3["source"] = "".join(ex3["source"]).replace("> 0.5", "> 0.25")
    _write(subs, "wrong", wrong)
    crash = copy.deepcopy(full)  # exercise 1 crashes, exercise 2's check is edited
    _solutions(crash)[0]["source"] = "# Solution\nraise RuntimeError('boom')\n"
    _code(crash, CHECK_TEMPLATE.format(exercise="ex2"))["source"] = "print(1)"
    _write(subs, "crash", crash)
    (subs / "garbled.ipynb").write_text("{not json")
    table = grade_folder(subs, timeout=300, cache=cache)
    slow = copy.deepcopy(full)
    _solutions(slow)[0]["source"] = "# Solution\nimport time\ntime.sleep(300)\n"
    _write(subs, "slow", slow)
    timed = grade_notebook(subs / "slow.ipynb", timeout=5, cache=cache)
    return table, pd.DataFrame(timed), subs


def _status(table, student):
    rows = table[table["student"] == student]
    return dict(zip(rows["exercise"].str.split("/").str[1], rows["status"]))


def test_the_reference_solution_gets_every_point(graded):
    table, _, _ = graded
    right = table[table["student"] == "right"]
    assert list(table.columns) == COLUMNS
    assert len(right) == 3 and (right["status"] == "passed").all()
    assert (right["points"] == right["max_points"]).all()


def test_the_blank_student_copy_gets_nothing(graded):
    table, _, _ = graded
    blank = table[table["student"] == "blank"]
    assert len(blank) == 3 and (blank["points"] == 0).all()
    assert blank["status"].str.startswith("failed: missing").all()


def test_a_pasted_solution_and_a_wrong_value_fail(graded):
    table, _, _ = graded
    status = _status(table, "wrong")
    assert status["ex1"] == "passed"
    assert status["ex2"].startswith("failed: missing share_log_of_mean_larger")
    assert status["ex3"].startswith("failed: most_changed_n")  # it runs, wrong value
    wrong = table[table["student"] == "wrong"].set_index("exercise")
    assert wrong.loc["01_data/ex3", "points"] < wrong.loc["01_data/ex3", "max_points"]


def test_a_crash_a_timeout_and_tampered_checks_get_a_status(graded):
    table, timed, _ = graded
    crash = _status(table, "crash")
    assert crash["ex1"].startswith("crashed: cell") and "boom" in crash["ex1"]
    assert crash["ex2"].startswith("tampered: the check cell of ex2")
    assert crash["ex3"] == "passed"  # the rest of the notebook still counts
    garbled = table[table["student"] == "garbled"]
    assert garbled["status"].str.startswith("unreadable").all()
    assert timed["status"].str.startswith("timeout").all()
    assert (timed["points"] == 0).all() and len(timed) == 3


@pytest.mark.parametrize("chapter", ["02_double_perturbations", "03_linear_model"])
def test_the_blank_copies_of_chapters_2_and_3_fail(chapter, tmp_path):
    nb = _load(ROOT / "student" / f"{chapter}.ipynb")
    setup = SETUP_TEMPLATE.format(chapter=chapter)
    start = nb["cells"].index(_code(nb, setup))
    # the exercises alone: a blank cell stores no answer whatever ran before
    nb["cells"] = [*nb["cells"][start:]]
    first = {"cell_type": "code", "source": "profile = 'quick'", "metadata": {}}
    nb["cells"].insert(0, first | {"outputs": [], "execution_count": None})
    _write(tmp_path, "blank", nb)
    rows = pd.DataFrame(grade_notebook(tmp_path / "blank.ipynb", timeout=120))
    assert len(rows) == len(EXERCISES[chapter])
    assert (rows["points"] == 0).all()
    assert rows["status"].str.startswith("failed: missing").all()


def test_a_notebook_without_the_setup_cell_is_tampered(tmp_path, capsys):
    nb = _load(ROOT / "student" / "01_data.ipynb")
    nb["cells"] = [
        c for c in nb["cells"] if "checks.notebook" not in "".join(c["source"])
    ]
    _write(tmp_path, "x", nb)
    assert main(["grade", str(tmp_path / "x.ipynb"), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["status"].startswith("tampered")
    code = main(["grade", str(tmp_path / "x.ipynb"), "--out", "g.csv"])
    assert code == 1 and "not a folder" in capsys.readouterr().err


def test_the_expected_values_obey_their_closed_forms():
    expected = json.loads(expected_path("quick").read_text())
    assert expected["01_data"]["ex2"]["share_log_of_mean_larger"] == 1.0  # Jensen
    assert abs(expected["02_double_perturbations"]["ex1"]["max_difference"]) < 1e-9
    wins = expected["02_double_perturbations"]["ex2"]
    assert 0 <= wins["gears_wins"] <= wins["n_pairs"]
    fractions = expected["03_linear_model"]["ex2"]["fraction_predicted"]
    assert all(0 <= v <= 1 for v in fractions.values())


def test_the_public_check_in_the_notebook_passes_and_fails():
    expected = json.loads(expected_path("quick").read_text())["01_data"]["ex1"]
    namespace = {"grader": checks.notebook("01_data", "quick"), **expected}
    exec("result = grader.check('ex1')", namespace)
    assert "all 1 public checks passed" in repr(namespace["result"])
    namespace["smallest_n_cells"] = expected["smallest_n_cells"] + 1
    exec("result = grader.check('ex1')", namespace)
    assert "0 of 1" in repr(namespace["result"]) and "Hint" in repr(namespace["result"])


def test_the_hidden_cases_stay_out_of_the_public_files():
    for chapter, exercises in EXERCISES.items():
        for exercise, spec in exercises.items():
            public = (checks.tests_dir("quick", chapter) / f"{exercise}.py").read_text()
            hidden = checks.tests_dir("quick", chapter, hidden=True) / f"{exercise}.py"
            for name in spec["answers"]:
                assert (f"close({name}," in public) == (name in spec["public"])
                assert f"close({name}," in hidden.read_text()
