"""scripts/compare_results.py: the check that a refactor leaves every result file
unchanged."""

import runpy
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "compare_results.py"
compare = runpy.run_path(str(SCRIPT))["compare"]


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


BASE = {
    "01_data/conditions.csv": "condition,n\nA,3\nB,4\n",
    "04_foundation_models/training_costs.csv": (
        "model,seconds,peak_rss_gb\nm,10.5,1.2\n"
    ),
    "04_foundation_models/ckpt/args.json": '{"seed": 1}\n',
    "status.csv": "chapter,seconds\n01_data,20\n",
}


def test_identical_folders_pass(tmp_path):
    a = _write(tmp_path / "a", BASE)
    b = _write(tmp_path / "b", BASE | {"status.csv": "chapter,seconds\n01_data,99\n"})
    lines, real = compare(a, b)
    assert real == 0
    assert lines == ["3 of 3 files byte-identical; 0 real difference(s)"]


def test_a_changed_value_a_missing_and_an_extra_file_are_differences(tmp_path):
    a = _write(tmp_path / "a", BASE)
    changed = dict(BASE)
    changed["01_data/conditions.csv"] = "condition,n\nA,3\nB,5\n"
    del changed["04_foundation_models/ckpt/args.json"]
    changed["01_data/new.csv"] = "x\n1\n"
    b = _write(tmp_path / "b", changed)
    lines, real = compare(a, b)
    assert real == 3
    assert "DIFFERS:       01_data/conditions.csv (columns: n)" in lines
    assert "missing after: 04_foundation_models/ckpt/args.json" in lines
    assert "extra after:   01_data/new.csv" in lines


def test_machine_columns_alone_are_not_a_difference(tmp_path):
    a = _write(tmp_path / "a", BASE)
    timing = "model,seconds,peak_rss_gb\nm,31.0,1.9\n"
    b = _write(
        tmp_path / "b", BASE | {"04_foundation_models/training_costs.csv": timing}
    )
    lines, real = compare(a, b)
    assert real == 0
    assert any(line.startswith("machine only:") and "seconds" in line for line in lines)


def test_command_line_exit_status_and_bad_folder(tmp_path):
    a = _write(tmp_path / "a", BASE)
    b = _write(tmp_path / "b", BASE | {"01_data/conditions.csv": "condition,n\nA,0\n"})
    run = [sys.executable, str(SCRIPT)]
    assert subprocess.run(run + [str(a), str(a)], capture_output=True).returncode == 0
    assert subprocess.run(run + [str(a), str(b)], capture_output=True).returncode == 1
    bad = subprocess.run(
        run + [str(a), str(tmp_path / "nope")], capture_output=True, text=True
    )
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "is not a results folder" in bad.stderr


def test_chapter_10_measured_rows_are_machine_only_but_other_rows_count(tmp_path):
    facts = "index,value\ncells,100\nwall time (s),8.1\n"
    a = _write(tmp_path / "a", {"10_scaling_up/run_facts.csv": facts})
    slower = _write(
        tmp_path / "b", {"10_scaling_up/run_facts.csv": facts.replace("8.1", "24")}
    )
    assert compare(a, slower)[1] == 0
    more = _write(
        tmp_path / "c", {"10_scaling_up/run_facts.csv": facts.replace("100", "99")}
    )
    assert compare(a, more)[1] == 1


def test_gzip_files_compare_by_content(tmp_path):
    import gzip

    for name, mtime in (("a", 1), ("b", 2)):
        path = tmp_path / name / "05_embeddings" / "e.csv.gz"
        path.parent.mkdir(parents=True)
        path.write_bytes(gzip.compress(b"gene,x\nA,1\n", mtime=mtime))
    assert compare(tmp_path / "a", tmp_path / "b") == (
        ["1 of 1 files byte-identical; 0 real difference(s)"],
        0,
    )
