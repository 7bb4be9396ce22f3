"""A sealed class challenge (course issue 31, item 7): a Virtual-Cell-Challenge-style
capstone an instructor runs with two commands.

``make`` draws a held-out split that students never see. On a SYNTHETIC task (the
default ``simulated_doubles``) it simulates a fresh screen from the instructor's
secret ``seed`` (not the book's seed 0, whose truth every student can load), so the
held-out truth exists only in ``DIR/sealed/``. ``DIR/students/`` is the bundle handed
out: the training pseudobulks and cells, the conditions to predict and a README.
On a registered real task the data are public, so nothing is sealed (a warning says
so).

``score`` reads every submission in a folder (the formats of chapter 7: the tidy CSV
of :class:`helpers.predictions.Predictions`, or an ``.h5ad`` of predicted cells),
scores each with :func:`helpers.benchmark.run` (``metrics="all"``; the task's
baselines no_change, additive, mean and the linear model beside it) and writes
``leaderboard.csv``, ``leaderboard.html`` (one self-contained page) and
``metrics.csv`` (per condition). Uncertainty: a 95% percentile interval of each
method's mean L2 and mean Pearson delta, resampling the held-out conditions
(:func:`helpers.uncertainty.crossed_interval`). Rank: mean L2 on the top ``n_top``
control-expressed genes (lower is better; the paper's headline metric). A broken
submission gets one row with its status, never a crashed scorer.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from ..benchmark import tasks as task_registry
from ..benchmark.runner import run
from ..errors import BookError, InputError
from ..models.contract import TaskData
from ..predictions import Predictions
from ..pseudobulk import Pseudobulk, pseudobulk
from ..simulate import simulate_screen
from ..splits import Split, double_split, single_split
from ..uncertainty import crossed_interval

__all__ = ["make", "score", "load_bundle", "SYNTHETIC_LABEL"]

SYNTHETIC_LABEL = "SYNTHETIC data (simulated screen, not a real experiment)"
_SIMULATED = {"simulated_doubles": "doubles", "simulated_singles": "singles"}
_SPLIT_SEED = 1
_N_BOOT = 2000
_FORMATS = (".csv", ".csv.gz", ".h5ad")


def _sha(frame: pd.DataFrame) -> str:
    data = np.ascontiguousarray(frame.to_numpy(dtype=np.float64)).round(10)
    text = "|".join(frame.index) + "#" + "|".join(frame.columns)
    return hashlib.sha256(data.tobytes() + text.encode()).hexdigest()


def _screen_data(spec: dict):
    """(cells, pseudobulk, other screen's pseudobulk or None) of a challenge spec."""
    if spec["simulate"] is None:
        job = task_registry.get_task(spec["task"])
        loaded = job._loaded
        return loaded[0], loaded[1], loaded[2]
    screen = simulate_screen(**spec["simulate"])
    if spec["kind"] == "double":
        return screen.adata, pseudobulk(screen.adata), None
    lines = list(spec["simulate"]["cell_lines"])
    return (
        screen.adatas[lines[0]],
        pseudobulk(screen.adatas[lines[0]]),
        pseudobulk(screen.adatas[lines[1]]),
    )


def make(
    out: str | os.PathLike,
    *,
    task: str = "simulated_doubles",
    seed: int = 31,
    simulate: dict | None = None,
) -> dict:
    """Write the sealed challenge: ``out/sealed/`` (instructor only) and
    ``out/students/`` (the bundle to hand out).

    ``out``: the folder; ``task``: a registered task (default the SYNTHETIC
    ``simulated_doubles``); ``seed``: the secret seed of the simulated screen (keep it
    private; the default is public, pick your own for a class); ``simulate``: extra
    arguments of :func:`helpers.simulate.simulate_screen` (e.g. a smaller screen).
    Returns the sealed spec (a dict).
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(
            f"seed must be a non-negative integer (the secret seed of the screen), "
            f"got {seed!r}."
        )
    job = task_registry.get_task(task)
    out = Path(out)
    spec: dict = {"task": task, "kind": job.kind, "split_seed": _SPLIT_SEED}
    if task in _SIMULATED:
        params = dict(task_registry._SIMULATED[_SIMULATED[task]])
        params.update(simulate or {})
        params["seed"] = int(seed)
        if "cell_lines" in params:
            params["cell_lines"] = list(params["cell_lines"])
        spec["simulate"] = params
        spec["label"] = SYNTHETIC_LABEL
        spec["sealed"] = True
    else:
        if simulate:
            raise InputError(
                f"simulate= applies to the simulated tasks only, not {task!r}; "
                "drop it or pick simulated_doubles / simulated_singles."
            )
        spec["simulate"] = None
        spec["label"] = f"real data: {job.description}"
        spec["sealed"] = False
    cells, pb, _ = _screen_data(spec)
    if spec["simulate"] is None:
        split = job.splits[0]
    elif job.kind == "double":
        split = double_split(pb.conditions, _SPLIT_SEED, dataset=pb.dataset)
    else:
        split = single_split(pb.conditions, _SPLIT_SEED, dataset=pb.dataset)
    held_out = list(split.held_out)
    spec.update(
        dataset=pb.dataset,
        split_kind=split.kind,
        split_seed=split.seed,
        assignment=dict(split.assignment),
        held_out=held_out,
        n_genes=len(pb.genes),
        truth_sha256=_sha(pb.means.loc[held_out]),
    )
    sealed = out / "sealed"
    sealed.mkdir(parents=True, exist_ok=True)
    (sealed / "challenge.json").write_text(json.dumps(spec, indent=1) + "\n")
    pb.means.loc[held_out].to_csv(sealed / "truth_held_out.csv.gz")
    (sealed / "README.txt").write_text(
        f"{spec['label']}\nINSTRUCTOR ONLY: the held-out split and its truth. Do not "
        "share this folder.\nScore: python -m helpers.course challenge score "
        "SUBMISSIONS/ --sealed THIS_FOLDER --out OUTDIR\n"
    )
    students = out / "students"
    students.mkdir(parents=True, exist_ok=True)
    train = [c for c in split.train]
    pb.means.loc[train].to_csv(students / "train_pseudobulk.csv.gz")
    pb.n_cells.loc[train].rename("n_cells").to_csv(students / "train_n_cells.csv")
    mask = cells.obs["condition"].isin(train).to_numpy()
    subset = cells[mask].to_memory() if cells.isbacked else cells[mask].copy()
    subset.uns = {"challenge_label": spec["label"]}
    subset.write_h5ad(students / "train_cells.h5ad", compression="gzip")
    (students / "conditions_to_predict.txt").write_text("\n".join(held_out) + "\n")
    public = {
        "label": spec["label"],
        "task_kind": job.kind,
        "dataset": pb.dataset,
        "seed": split.seed,
        "n_genes": len(pb.genes),
        "n_train_conditions": len(train),
        "n_conditions_to_predict": len(held_out),
    }
    (students / "challenge.json").write_text(json.dumps(public, indent=1) + "\n")
    (students / "README.md").write_text(_student_readme(public))
    return spec


def _student_readme(public: dict) -> str:
    return (
        f"# Class challenge: {public['label']}\n\n"
        f"Predict the mean expression of the {public['n_conditions_to_predict']} "
        "conditions in `conditions_to_predict.txt` for all "
        f"{public['n_genes']} genes, from the training data here "
        "(`train_pseudobulk.csv.gz`: condition x gene means, `ctrl` included; "
        "`train_cells.h5ad`: the training cells).\n\n"
        "In Python (chapter 7's contract):\n\n"
        "```python\nfrom helpers.course.challenge import load_bundle\n"
        "train, conditions = load_bundle('students/')\n"
        "values = my_model.predict(train, conditions)  # conditions x genes\n"
        "Predictions(values, 'my_team', train.dataset, train.seed).save("
        "'my_team.csv')\n```\n\n"
        "Submit one file named after your team: the tidy CSV (columns dataset, "
        "method, seed, condition, gene, prediction; seed "
        f"{public['seed']}) or an .h5ad of predicted cells (obs['target_gene'], "
        "'non-targeting' for control). The held-out truth is sealed with your "
        "instructor.\n"
    )


def load_bundle(folder: str | os.PathLike) -> tuple[TaskData, list[str]]:
    """The students' bundle as chapter 7's inputs: (training data, conditions to
    predict).

    ``folder``: the ``students/`` folder written by :func:`make`. The training data is
    a :class:`helpers.models.contract.TaskData` with pseudobulks only.
    """
    folder = Path(folder)
    info_path = folder / "challenge.json"
    if not info_path.exists():
        raise InputError(
            f"No challenge.json in {folder}: pass the students/ folder written by "
            "python -m helpers.course challenge make."
        )
    info = json.loads(info_path.read_text())
    means = pd.read_csv(folder / "train_pseudobulk.csv.gz", index_col=0)
    means.columns = means.columns.astype(str)
    n_cells = pd.read_csv(folder / "train_n_cells.csv", index_col=0)["n_cells"]
    conditions = (folder / "conditions_to_predict.txt").read_text().split()
    assignment = {c: "train" for c in means.index} | {c: "test" for c in conditions}
    split = Split(info["dataset"], int(info["seed"]), "challenge", assignment)
    train = TaskData(Pseudobulk(means, n_cells, info["dataset"]), split)
    return train, conditions


def _read_sealed(sealed: str | os.PathLike) -> dict:
    path = Path(sealed) / "challenge.json"
    if not path.exists():
        raise InputError(
            f"No challenge.json in {sealed}: pass --sealed DIR/sealed as written by "
            "python -m helpers.course challenge make."
        )
    return json.loads(path.read_text())


@contextmanager
def _registered(spec: dict):
    """The sealed split as a temporary benchmark task (removed afterwards)."""
    cells, pb, other = _screen_data(spec)
    held_out = spec["held_out"]
    if _sha(pb.means.loc[held_out]) != spec["truth_sha256"]:
        raise InputError(
            "The data rebuilt from the sealed spec differ from the sealed truth "
            "(another book version?): score with the version that made the challenge."
        )
    split = Split(
        spec["dataset"], spec["split_seed"], spec["split_kind"], spec["assignment"]
    )
    name = "class_challenge"
    task = task_registry.Task(
        name,
        "quick",
        spec["kind"],
        f"class challenge on {spec['label']}",
        lambda: (cells, pb, other),
        lambda _pb: [split],
        planted=None,
    )
    task_registry.TASKS[name] = task
    try:
        yield name
    finally:
        task_registry.TASKS.pop(name, None)


def _submissions(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise InputError(
            f"{folder} is not a folder: pass the folder holding the submitted files."
        )
    return sorted(
        p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
    )


def _load(path: Path, team: str):
    """Chapter 7's readers: the tidy CSV or predicted cells (.h5ad)."""
    if path.name.endswith(".h5ad"):
        return str(path)
    if not path.name.endswith((".csv", ".csv.gz")):
        raise InputError(
            f"{path.name}: not a submission format; submit a .csv (tidy predictions) "
            "or an .h5ad of predicted cells."
        )
    return [p.renamed(team) for p in Predictions.load_all(path)]


def _interval(metrics: pd.DataFrame, method: str, value: str) -> tuple:
    rows = metrics[metrics["method"] == method]
    if value not in rows or rows.empty:
        return np.nan, np.nan
    got = crossed_interval(rows, value, ["condition"], n_boot=_N_BOOT, seed=0)
    return got["lower"], got["upper"]


def score(
    submissions: str | os.PathLike,
    sealed: str | os.PathLike,
    out: str | os.PathLike,
    *,
    n_top: int = 1000,
) -> pd.DataFrame:
    """Score every file in ``submissions`` against the sealed split; write
    ``out/leaderboard.csv``, ``out/leaderboard.html`` and ``out/metrics.csv``.

    ``submissions``: a folder of files (team = file stem); ``sealed``: the
    ``sealed/`` folder of :func:`make`; ``out``: the output folder; ``n_top``: the
    evaluation genes (top expressed in control). Returns the leaderboard.
    """
    spec = _read_sealed(sealed)
    files = _submissions(Path(submissions))
    rows, metric_tables = [], []
    reference_rows = None
    with _registered(spec) as name:
        for path in files:
            team = path.name
            for suffix in _FORMATS:
                if team.endswith(suffix):
                    team = team[: -len(suffix)]
            try:
                flag = {"name": team} if path.name.endswith(".h5ad") else {}
                result = run(
                    task=name,
                    predictions=_load(path, team),
                    n_top=n_top,
                    progress=False,
                    metrics="all",
                    **flag,
                )
            except BookError as err:
                rows.append({"submission": path.name, "status": f"error: {err}"})
                continue
            except Exception as err:  # a broken file must not stop the class
                rows.append(
                    {
                        "submission": path.name,
                        "status": f"error: unreadable ({type(err).__name__}: {err})",
                    }
                )
                continue
            board, metrics = result.leaderboard, result.metrics
            mine = board[board["source"] == "your model"].iloc[0].to_dict()
            method = mine["method"]
            lo, hi = _interval(metrics, method, "l2")
            plo, phi = _interval(metrics, method, "pearson_delta")
            status = "ok"
            notes = [w for w in result.warnings if "not better than" not in w]
            if notes:
                status = "ok; " + "; ".join(notes)
            rows.append(
                mine
                | {
                    "submission": path.name,
                    "status": status,
                    "l2_lower": lo,
                    "l2_upper": hi,
                    "pearson_delta_lower": plo,
                    "pearson_delta_upper": phi,
                }
            )
            metric_tables.append(metrics[metrics["method"] == method])
            if reference_rows is None:
                reference_rows = []
                others = board[board["source"] != "your model"]
                for ref in others.to_dict("records"):
                    lo, hi = _interval(metrics, ref["method"], "l2")
                    plo, phi = _interval(metrics, ref["method"], "pearson_delta")
                    control = ref["source"] == "positive control"
                    reference_rows.append(
                        ref
                        | {
                            "submission": "",
                            "status": "ceiling, not ranked" if control else "reference",
                            "l2_lower": lo,
                            "l2_upper": hi,
                            "pearson_delta_lower": plo,
                            "pearson_delta_upper": phi,
                        }
                    )
                metric_tables.append(metrics[metrics["method"].isin(others["method"])])
    table = _ranked(rows, reference_rows or [], spec)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "leaderboard.csv", index=False)
    if metric_tables:
        pd.concat(metric_tables, ignore_index=True).to_csv(
            out / "metrics.csv", index=False
        )
    (out / "leaderboard.html").write_text(_html(table, spec, n_top))
    return table


_FIRST = [
    "rank",
    "submission",
    "method",
    "source",
    "status",
    "mean_l2",
    "l2_lower",
    "l2_upper",
    "mean_pearson_delta",
    "pearson_delta_lower",
    "pearson_delta_upper",
    "n",
]


def _ranked(rows: list[dict], references: list[dict], spec: dict) -> pd.DataFrame:
    table = pd.DataFrame(rows + references)
    for column in _FIRST:
        if column not in table:
            table[column] = np.nan
    scored = table["mean_l2"].notna() & (table["source"] != "positive control")
    order = table.loc[scored, "mean_l2"].rank(method="min")
    table["rank"] = pd.array([pd.NA] * len(table), dtype="Int64")
    table.loc[scored, "rank"] = order.astype(int).to_numpy()
    table["data"] = spec["label"]
    table["sort"] = np.where(
        scored,
        table["mean_l2"],
        np.where(table["source"] == "positive control", np.inf, np.nan),
    )
    table = table.sort_values(["sort", "submission"], na_position="last")
    rest = [c for c in table.columns if c not in _FIRST + ["sort"]]
    return table[_FIRST + rest].reset_index(drop=True)


def _fmt(value, digits: int = 3) -> str:
    if isinstance(value, float | np.floating):
        return "" if np.isnan(value) else f"{value:.{digits}f}"
    return "" if value is None or value is pd.NA else str(value)


def _html(table: pd.DataFrame, spec: dict, n_top: int) -> str:
    head = [
        "rank",
        "team / method",
        "source",
        "mean L2 (95% interval)",
        "mean Pearson delta (95% interval)",
        "n conditions",
        "status",
    ]
    lines = []
    for row in table.to_dict("records"):
        who = row["submission"] or row["method"]
        l2 = (
            f"{_fmt(row['mean_l2'])} ({_fmt(row['l2_lower'])}-{_fmt(row['l2_upper'])})"
            if pd.notna(row["mean_l2"])
            else ""
        )
        pdl = (
            f"{_fmt(row['mean_pearson_delta'])} "
            f"({_fmt(row['pearson_delta_lower'])} to "
            f"{_fmt(row['pearson_delta_upper'])})"
            if pd.notna(row["mean_pearson_delta"])
            else ""
        )
        cells = [
            _fmt(row["rank"]),
            who,
            _fmt(row["source"]),
            l2,
            pdl,
            _fmt(row["n"]).split(".")[0],
            row["status"],
        ]
        klass = "ref" if row["submission"] in ("", None) else ""
        if str(row["status"]).startswith("error"):
            klass = "err"
        lines.append(
            f"<tr class='{klass}'>"
            + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells)
            + "</tr>"
        )
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<title>Class challenge leaderboard</title><style>"
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px}tr.ref{color:#555}"
        "tr.err{background:#fde}.label{font-weight:bold;color:#a00}"
        "</style></head><body><h1>Class challenge leaderboard</h1>"
        f"<p class='label'>{html.escape(spec['label'])}</p>"
        f"<p>{len(spec['held_out'])} held-out conditions, ranked by mean L2 on the "
        f"top {n_top} control-expressed genes (lower is better). Intervals: 95% "
        f"percentile bootstrap over the held-out conditions ({_N_BOOT} resamples). "
        "Rows 'reference' are the baselines and the linear model; positive controls "
        "(made from held-out cells) show the ceiling and are not ranked. All metric "
        "families are in leaderboard.csv.</p><table><tr>"
        + "".join(f"<th>{h}</th>" for h in head)
        + "</tr>"
        + "".join(lines)
        + "</table></body></html>\n"
    )
