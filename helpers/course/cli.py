"""The course's command line.

::

    python -m helpers.course challenge make --out DIR [--seed N] [--task T]
    python -m helpers.course challenge score SUBMISSIONS/ --sealed DIR/sealed \\
        --out OUTDIR
    python -m helpers.course grade SUBMISSIONS/ --out grades.csv [--json]
    python -m helpers.course expected --profile quick

Exit codes: 0 done; 1 bad input (one line on standard error names the problem and
the fix); 2 usage error.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import BookError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.course",
        description="Course machinery: class challenge, grading, expected values.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    challenge = sub.add_parser("challenge", help="the sealed class challenge")
    steps = challenge.add_subparsers(dest="step", required=True)
    make = steps.add_parser("make", help="write the sealed split and the bundle")
    make.add_argument("--out", required=True, help="folder (sealed/, students/)")
    make.add_argument(
        "--seed", type=int, default=31, help="secret seed of the simulated screen"
    )
    make.add_argument("--task", default="simulated_doubles", help="benchmark task")
    score = steps.add_parser("score", help="rank a folder of submissions")
    score.add_argument("submissions", help="folder of submitted files")
    score.add_argument("--sealed", required=True, help="DIR/sealed of make")
    score.add_argument("--out", required=True, help="folder for the leaderboard")
    score.add_argument("--n-top", type=int, default=1000, help="evaluation genes")
    grade = sub.add_parser("grade", help="grade a folder of notebooks")
    grade.add_argument("submissions", help="folder of .ipynb (or one .ipynb)")
    grade.add_argument("--out", help="grades CSV")
    grade.add_argument("--json", action="store_true", help="print one notebook's JSON")
    grade.add_argument("--timeout", type=int, default=600, help="seconds a notebook")
    grade.add_argument("--chapter", help="chapter stem (default: from the notebook)")
    expected = sub.add_parser("expected", help="write the checks' expected values")
    expected.add_argument("--profile", default="quick", choices=["quick", "paper"])
    expected.add_argument("--build", help="folder of executed notebooks")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line on ``argv`` (default ``sys.argv[1:]``); returns the exit
    code. ``argv``: the arguments (module docstring)."""
    args = _parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    try:
        if args.command == "challenge" and args.step == "make":
            from .challenge import make

            spec = make(args.out, task=args.task, seed=args.seed)
            print(f"{spec['label']}")
            print(
                f"wrote {args.out}/sealed (instructor only: {len(spec['held_out'])} "
                f"held-out conditions and their truth) and {args.out}/students "
                "(hand this out)"
            )
            if not spec["sealed"]:
                print("WARNING: real public data: students can look up the truth.")
            return 0
        if args.command == "challenge":
            from .challenge import score

            table = score(args.submissions, args.sealed, args.out, n_top=args.n_top)
            print(table["data"].iloc[0] if len(table) else "")
            shown = table[["rank", "submission", "method", "mean_l2", "status"]]
            print(shown.round(3).to_string(index=False))
            print(f"wrote leaderboard.csv, leaderboard.html to {args.out}")
            return 0
        if args.command == "grade":
            from .grade import grade_main

            return grade_main(args)
        from .expected import write_expected

        path = write_expected(args.profile, build=args.build)
        print(f"wrote {path}")
        return 0
    except BookError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
