"""Every executed page says which profile and which data it ran on, read from the
build (helpers.execute)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import nbformat
import pytest

from helpers import execute, profiles

ROOT = Path(__file__).resolve().parents[2]


def test_paper_plan_runs_what_cannot_run_on_paper_on_quick_and_says_why():
    stems = ["01_data", "04_foundation_models", "05_embeddings", "08_beyond_the_paper"]
    plan = execute.plan_chapters(stems, "paper", gpu=False, checkpoint="")
    assert plan["01_data"] == {"profile": "paper", "reason": "", "parameters": {}}
    assert (
        plan["04_foundation_models"]["profile"] == "quick"
        and "GPU" in plan["04_foundation_models"]["reason"]
    )
    assert (
        plan["05_embeddings"]["profile"] == "quick"
        and "scGPT_human" in plan["05_embeddings"]["reason"]
    )
    assert plan["08_beyond_the_paper"]["profile"] == "quick"
    plan = execute.plan_chapters(stems, "paper", gpu=True, checkpoint="/ckpt")
    assert plan["04_foundation_models"] == {
        "profile": "paper",
        "reason": "",
        "parameters": {"checkpoint_dir": "/ckpt"},
    }
    assert plan["05_embeddings"]["parameters"] == {"scgpt_checkpoint": "/ckpt"}
    assert all(
        p["profile"] == "quick" and not p["reason"]
        for p in execute.plan_chapters(
            stems, "quick", gpu=False, checkpoint=""
        ).values()
    )
    with pytest.raises(ValueError, match="Unknown data profile"):
        execute.plan_chapters(stems, "full")


def test_atlas_chapter_runs_on_paper_only_when_its_file_is_cached_or_allowed(
    tmp_path, monkeypatch
):
    """Chapter 10's paper profile downloads the 66 GB genome-wide K562 file: a paper
    build on a standard runner (14 GB of disk) must not start that download."""
    from helpers import data

    monkeypatch.setenv(data.CACHE_ENV, str(tmp_path))
    monkeypatch.delenv(profiles.ATLAS_ENV, raising=False)
    stems = ["01_data", "10_scaling_up"]
    plan = execute.plan_chapters(stems, "paper", gpu=False, checkpoint="")
    assert plan["01_data"]["profile"] == "paper"
    assert plan["10_scaling_up"]["profile"] == "quick"
    assert profiles.ATLAS_ENV in plan["10_scaling_up"]["reason"]
    assert "66 GB" in plan["10_scaling_up"]["reason"]
    monkeypatch.setenv(profiles.ATLAS_ENV, "1")
    plan = execute.plan_chapters(stems, "paper", gpu=False, checkpoint="")
    assert plan["10_scaling_up"] == {"profile": "paper", "reason": "", "parameters": {}}
    monkeypatch.setenv(profiles.ATLAS_ENV, "0")
    entry = data.get_entry(profiles.ATLAS_CHAPTERS["10_scaling_up"])
    (tmp_path / entry.filename).write_bytes(b"")  # present in the cache
    plan = execute.plan_chapters(stems, "paper", gpu=False, checkpoint="")
    assert plan["10_scaling_up"]["profile"] == "paper"
    quick = execute.plan_chapters(stems, "quick", gpu=False, checkpoint="", atlas=True)
    assert quick["10_scaling_up"]["profile"] == "quick"


def test_chapters_without_a_paper_profile_are_the_ones_whose_notebook_refuses_it():
    refusing = set()
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        code = "\n".join(
            "".join(c["source"]) for c in json.loads(path.read_text())["cells"]
        )
        match = re.search(r"check_profile\(profile, supported=\(([^)]*)\)", code)
        if match and '"paper"' not in match.group(1):
            refusing.add(path.stem)
    assert refusing == set(profiles.NO_PAPER_PROFILE)


def test_checkpoint_parameters_exist_in_the_chapters_parameters_cells():
    for stem, (name, _required) in profiles.PAPER_CHECKPOINT_PARAMETERS.items():
        nb = json.loads((ROOT / "notebooks" / f"{stem}.ipynb").read_text())
        params = next(
            c
            for c in nb["cells"]
            if "parameters" in c.get("metadata", {}).get("tags", [])
        )
        assert re.search(rf"^{name} = ", "".join(params["source"]), re.M), (stem, name)


def _book(tmp_path: Path) -> Path:
    root = tmp_path / "book"
    (root / "notebooks").mkdir(parents=True)
    (root / "_toc.yml").write_text(
        "format: jb-book\nroot: index\nchapters:\n  - file: notebooks/01_data\n"
        "  - file: notebooks/08_beyond_the_paper\n"
    )
    (root / "index.md").write_text("# A book\n\nIntro.\n")
    shutil_helpers = ROOT / "helpers"
    (root / "helpers").symlink_to(shutil_helpers)
    for stem, body in [
        (
            "01_data",
            "from helpers import data, simulate\n"
            "data.record_use('norman2019', kind='dataset', filename='f.zip', "
            "sha256='ab' * 32, "
            "url='https://figshare.com/ndownloader/files/1')\n"
            "simulate.simulate_screen(n_genes=50, n_single=4, n_double=2, "
            "cells_per_condition=3)",
        ),
        ("08_beyond_the_paper", "print(profile)"),
    ]:
        nb = nbformat.v4.new_notebook()
        nb.cells = [
            nbformat.v4.new_markdown_cell(f"# {stem}\n\nFirst paragraph."),
            nbformat.v4.new_code_cell(
                'profile = "quick"', metadata={"tags": ["parameters"]}
            ),
            nbformat.v4.new_code_cell(body),
        ]
        nb.metadata["kernelspec"] = {
            "name": "python3",
            "display_name": "Python 3",
            "language": "python",
        }
        nbformat.write(nb, root / "notebooks" / f"{stem}.ipynb")
    return root


def test_each_executed_page_and_the_front_page_carry_the_build_record(
    tmp_path, monkeypatch
):
    root = _book(tmp_path)
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    monkeypatch.setattr(execute, "book_root", lambda: root)
    monkeypatch.delenv("PERTURBBOOK_MIRROR", raising=False)
    monkeypatch.setattr(execute, "_has_cuda", lambda: False)
    assert execute.main(["--profile", "paper", "--out", "_build/book_src"]) == 0
    out = root / "_build" / "book_src"
    nb = json.loads((out / "notebooks" / "01_data.ipynb").read_text())
    first = "".join(nb["cells"][0]["source"])
    assert first.startswith(
        "# 01_data\n\n:::{admonition} Executed on the paper profile\n"
    )
    assert (
        "Norman 2019" in first
        and "`norman2019`" in first
        and "abababababababab" in first
    )
    assert "**synthetic** data from the book's simulator" in first
    assert nb["metadata"]["perturbbook"]["build"]["profile"] == "paper"
    other = "".join(
        json.loads((out / "notebooks" / "08_beyond_the_paper.ipynb").read_text())[
            "cells"
        ][0]["source"]
    )
    assert "Executed on the quick profile, not the paper profile" in other
    assert profiles.NO_PAPER_PROFILE["08_beyond_the_paper"] in other
    outputs = json.loads((out / "notebooks" / "08_beyond_the_paper.ipynb").read_text())[
        "cells"
    ]
    assert any(
        "quick" in "".join(o.get("text", ""))
        for c in outputs
        for o in c.get("outputs", [])
    )
    front = (out / "index.md").read_text()
    assert front.startswith(
        "# A book\n\n:::{admonition} How this site was built: the paper profile"
    )
    assert ":class: note dropdown perturbbook-build" in front  # folded (issue 33)
    assert "| 01_data | paper | norman2019, simulator (synthetic) |" in front
    assert (
        "| 08_beyond_the_paper | quick (this chapter has no paper profile yet) |"
        in front
    )
    assert (
        "| 01_data | paper | norman2019, simulator (synthetic) | ok |"
        in (out / "status.md").read_text()
    )
    # a chapter executed elsewhere (the GPU job) is taken with its own record, not
    # executed again
    gpu = tmp_path / "gpu"
    gpu.mkdir()
    (gpu / "01_data.ipynb").write_text(
        (out / "notebooks" / "01_data.ipynb").read_text()
    )
    monkeypatch.setenv(
        "PYTHONPATH", "/nonexistent"
    )  # executing it again would fail to import helpers
    status = execute.execute_notebooks(
        root, root / "_build" / "again", "paper", ["01_data"], gpu
    )
    assert status.loc[0, "status"] == "ok" and status.loc[0, "profile"] == "paper"
    assert (root / "_build" / "again" / "notebooks" / "01_data.ipynb").read_text() == (
        gpu / "01_data.ipynb"
    ).read_text()


def test_a_page_built_from_a_mirror_says_so_and_what_the_mirror_serves():
    record = {
        "profile": "paper",
        "reason": "",
        "executed_at": "2026-01-01 00:00 UTC",
        "commit": "abc",
        "mirror": "http://127.0.0.1:8000",
        "mirror_note": "it serves SYNTHETIC stand-ins",
        "data": [
            {
                "name": "adamson",
                "kind": "dataset",
                "filename": "adamson.zip",
                "sha256": "f" * 64,
                "url": "http://127.0.0.1:8000/dataverse.harvard.edu/api/access/"
                "datafile/6154417",
            }
        ],
    }
    label = execute.build_label(record, "paper")
    assert (
        "local mirror (http://127.0.0.1:8000)" in label
        and "SYNTHETIC stand-ins" in label
    )
    assert "Adamson 2016" in label and "`adamson.zip`" in label
    quick = execute.build_label(
        dict(record, profile="quick", reason="no GPU", mirror=""), "paper"
    )
    assert quick.startswith(
        ":::{admonition} Executed on the quick profile, not the paper profile\n"
        ":class: warning"
    )
    assert "no GPU" in quick and "mirror" not in quick
