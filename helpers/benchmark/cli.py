"""The command line: ``python -m helpers.benchmark --task NAME --predictions
FILE.csv|FILE.h5ad [--out DIR]``, and ``python -m helpers.benchmark score --real
REAL.h5ad --pred PRED.h5ad --metrics FAMILIES --out DIR`` (a file pair, no task:
:mod:`helpers.benchmark.filepair`).

A ``.h5ad`` file holds predicted cells in the cell-eval / Virtual Cell Challenge layout
(``--perturbation-key``, ``--control-label``); they are pseudobulked by the book's code
and also scored by the energy distance. The split audit, the paired test against the
reference baseline and (for tasks with cells in memory) chapter 8's columns are printed
and written beside the metrics.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

from ..errors import BookError
from ..metrics import FAMILY_CHOICES
from ..predictions import PredictionError, Predictions
from . import filepair
from .runner import run
from .tasks import get_task, list_tasks

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run the command line on ``argv`` (default ``sys.argv[1:]``); returns the exit
    code (module docstring and ``--help``). ``argv``: the arguments; a first argument
    ``score`` runs the file-pair mode."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["score"]:
        return score_main(argv[1:])
    parser = argparse.ArgumentParser(
        prog="python -m helpers.benchmark",
        description="Score a predictions file on a benchmark task, beside the "
        "baselines. Two .h5ad files and no task: python -m helpers.benchmark score "
        "--help.",
        epilog="exit codes: 0 scored; 1 bad input (one line on standard error "
        "names the problem and "
        "the fix); 2 usage error (unknown option or missing argument)",
    )
    parser.add_argument("--list", action="store_true", help="list the tasks and exit")
    parser.add_argument("--task", help="task name (see --list)")
    parser.add_argument(
        "--predictions",
        help="CSV with columns dataset, method, seed, condition, gene, prediction; "
        "or an .h5ad of predicted cells (cell-eval layout)",
    )
    parser.add_argument(
        "--perturbation-key",
        default="target_gene",
        help="obs column of predicted cells (.h5ad)",
    )
    parser.add_argument(
        "--control-label",
        default="non-targeting",
        help="control label of predicted cells (.h5ad)",
    )
    parser.add_argument(
        "--name", default="your_model", help="method name for predicted cells (.h5ad)"
    )
    parser.add_argument(
        "--no-extras",
        action="store_true",
        help="skip noise ceiling, retrieval and DE columns",
    )
    parser.add_argument("--out", help="folder for metrics.csv and leaderboard.csv")
    parser.add_argument(
        "--n-top",
        type=int,
        default=1000,
        help="evaluation genes: top n by control expression",
    )
    parser.add_argument(
        "--allow-missing",
        action="store_true",
        help="allow held-out conditions without prediction",
    )
    parser.add_argument(
        "--metrics",
        default="paper",
        choices=FAMILY_CHOICES,
        help="metric families (chapter 9): paper (default: L2, Pearson delta, "
        "r), systema, "
        "calibrated (DE-weighted, DRF), vcc (Virtual Cell Challenge) or all",
    )
    parser.add_argument(
        "--exclude-target",
        action="store_true",
        help="drop each condition's target gene(s) from the metrics that rank or "
        "correlate across genes",
    )
    args = parser.parse_args(argv)
    if args.list:
        print(list_tasks().to_string(index=False))
        return 0
    if not args.task or not args.predictions:
        parser.error("--task and --predictions are required (or --list)")
    if Path(args.predictions).is_dir():
        print(
            f"error: {args.predictions} is a folder, not a predictions file: "
            "pass the .csv or .h5ad "
            "file inside it.",
            file=sys.stderr,
        )
        return 1
    try:
        if args.predictions.endswith(".h5ad"):
            predictions = args.predictions
        else:
            predictions = Predictions.load_all(args.predictions)
        # passed only when set: the default is run's own
        flag = {"exclude_target": True} if args.exclude_target else {}
        result = run(
            task=args.task,
            predictions=predictions,
            n_top=args.n_top,
            allow_missing=args.allow_missing,
            extras=not args.no_extras,
            perturbation_key=args.perturbation_key,
            control_label=args.control_label,
            name=args.name,
            progress=False,
            metrics=args.metrics,
            **flag,
        )
    except (PredictionError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    shown = result.leaderboard.drop(columns=["dataset"]).round(3)
    print(f"task {args.task} ({get_task(args.task).description})")
    print(shown.to_string(index=False))
    print("split audit:")
    for row in result.audit.drop_duplicates("check", keep="last").itertuples():
        print(f"  {row.check}: {row.status} ({row.detail})")
    if result.comparison is not None:
        print(
            "paired test (positive mean_diff = your model better; interval: "
            "crossed bootstrap over "
            "conditions x seeds; better / worse decided by the sign-flip p):"
        )
        print(
            result.comparison[
                [
                    "method",
                    "baseline",
                    "value",
                    "n_pairs",
                    "mean_diff",
                    "lower",
                    "upper",
                    "p_text",
                    "better",
                    "worse",
                ]
            ]
            .round(4)
            .to_string(index=False)
        )
    if result.energy is not None:
        print(
            "energy distance of the predicted cells: mean "
            f"{result.energy['energy_distance'].mean():.3f} "
            f"over {len(result.energy)} (seed, condition) pairs"
        )
    for method, why in (result.not_applicable or {}).items():
        print(f"not applicable on this task: {method} ({why})")
    for warning in result.warnings:
        print(f"WARNING: {warning}")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        result.metrics.to_csv(out / "metrics.csv", index=False)
        result.leaderboard.to_csv(out / "leaderboard.csv", index=False)
        result.audit.to_csv(out / "split_audit.csv", index=False)
        written = ["metrics.csv", "leaderboard.csv", "split_audit.csv"]
        if result.comparison is not None:
            result.comparison.to_csv(out / "paired_test.csv", index=False)
            written.append("paired_test.csv")
        if result.energy is not None:
            result.energy.to_csv(out / "energy_distance.csv", index=False)
            written.append("energy_distance.csv")
        print(f"wrote {', '.join(written)} to {out}")
    return 0


def _families(text: str) -> list[str]:
    """``--metrics`` of the file-pair mode: comma-separated family names."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in filepair.family_choices()]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown metric family {(unknown or [text])[0]!r}; choose from "
            f"{', '.join(filepair.family_choices())} (comma-separated)"
        )
    return names


def _rules_text() -> str:
    lines = ["metric families (--metrics) and what each scores:"]
    for rule in filepair.RULES.values():
        what = rule.gets if rule.runs else f"refused: {rule.reason}"
        lines.append(
            textwrap.fill(
                f"{rule.family}: {what}",
                width=79,
                initial_indent="  ",
                subsequent_indent="    ",
            )
        )
    return "\n".join(lines)


def score_main(argv: list[str]) -> int:
    """``python -m helpers.benchmark score``: score a file pair, no task (``--help``;
    :mod:`helpers.benchmark.filepair`); returns the exit code. ``argv``: the
    arguments after ``score``."""
    parser = argparse.ArgumentParser(
        prog="python -m helpers.benchmark score",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.fill(
            "Score predicted cells against observed cells, one row per "
            "perturbation, without a task; writes OUT/metrics.csv. Both files: the "
            "Virtual Cell Challenge layout (cells in X, genes in var_names, the "
            "perturbation in obs). Integer counts are log-normalised (log1p(counts "
            "/ total * 1e4), helpers.simulate.log_normalise) for every family but "
            "vcc2026, which needs the counts.",
            width=79,
        ),
        epilog=_rules_text()
        + "\n\n"
        + textwrap.fill(
            "exit codes: 0 scored; 1 bad input (one line on standard error names "
            "the problem and the fix); 2 usage error",
            width=79,
        ),
    )
    parser.add_argument("--real", required=True, help="observed cells (.h5ad)")
    parser.add_argument("--pred", required=True, help="predicted cells (.h5ad)")
    parser.add_argument(
        "--metrics",
        type=_families,
        default=["paper"],
        help="comma-separated families (below) or all (every family that can run "
        "on the two files); default paper",
    )
    parser.add_argument("--out", required=True, help="folder for metrics.csv")
    parser.add_argument(
        "--pert-col",
        default=filepair.PERT_COL,
        help="obs column of the perturbation (default %(default)s)",
    )
    parser.add_argument(
        "--control",
        default=filepair.CONTROL_LABEL,
        help="control label in that column (default %(default)s)",
    )
    parser.add_argument(
        "--exclude-target",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="drop (or, with --no-exclude-target, keep) each perturbation's target "
        "gene in every metric that ranks or correlates across genes; default: each "
        "family's own definition (the book's families keep it, vcc2026 drops it)",
    )
    args = parser.parse_args(argv)
    try:
        result = filepair.score_files(
            args.real,
            args.pred,
            metrics=args.metrics,
            pert_col=args.pert_col,
            control=args.control,
            exclude_target=args.exclude_target,
        )
        path = filepair.save(result, args.out)
    except (BookError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    table = result.metrics
    kind = {True: "counts", False: "log-normalised"}
    print(
        f"scored {len(table)} perturbations on {result.n_genes} genes "
        f"(real: {result.n_cells['real']} cells, {kind[result.counts['real']]}; "
        f"pred: {result.n_cells['pred']} cells, {kind[result.counts['pred']]})"
    )
    for family in result.families:
        print(f"  {family}: {result.gets[family]}")
    for family, why in result.not_scored.items():
        print(f"  not scored: {family} ({why})")
    means = table.drop(columns=["perturbation"]).mean(numeric_only=True)
    print("mean over perturbations (NaN skipped):")
    print(means.round(4).to_string())
    print(f"wrote {path}")
    return 0
