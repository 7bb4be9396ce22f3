"""The book's empirical null against R's ``locfdr(d, nulltype = 1)`` (locfdr 1.1-8).

Compared on the shared reference cases.

Prints one row per case: n, upper / lower thresholds, sigma and p0 (book / R), the
largest relative difference of delta, sigma, p0 and the thresholds, and the largest
absolute difference of the per-value local fdr. Run: ``python
benchmarks/compare_locfdr.py [--shared ../shared] [--out FILE]``; ``--small``: only the
cases of at most 2,000 values (seconds; what the tests run).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from helpers import interactions


def compare(reference: Path, max_n: int | None = None) -> pd.DataFrame:
    if not (reference / "cases.csv").exists():
        raise FileNotFoundError(
            f"{reference}/cases.csv not found: pass --shared pointing at the "
            "shared folder."
        )
    cases = pd.read_csv(reference / "cases.csv")
    if max_n is not None:
        cases = cases[cases["n"] <= max_n]
    rows = []
    for case in cases.itertuples():
        values = pd.read_csv(reference / f"{case.case}_values.csv")[
            "deviation"
        ].to_numpy()
        r_fdr = pd.read_csv(reference / f"{case.case}_locfdr.csv")
        fit = interactions.fit_empirical_null(values)
        if not np.allclose(fit.values, r_fdr["deviation"].to_numpy()):
            raise ValueError(
                f"{case.case}: the locfdr file's values are not the input vector "
                "in the same order."
            )
        rel = {
            k: abs(mine / theirs - 1)
            for k, mine, theirs in [
                ("delta", fit.mean, case.delta),
                ("sigma", fit.sd, case.sigma),
                ("p0", fit.proportion, case.p0),
                ("upper", fit.upper, case.upper),
                ("lower", fit.lower, case.lower),
            ]
        }
        rows.append(
            {
                "case": case.case,
                "n": case.n,
                "upper": f"{fit.upper:.4f} / {case.upper:.4f}",
                "lower": f"{fit.lower:.4f} / {case.lower:.4f}",
                "sigma": f"{fit.sd:.4f} / {case.sigma:.4f}",
                "p0": f"{fit.proportion:.3f} / {case.p0:.3f}",
                "delta": f"{fit.mean:.5f} / {case.delta:.5f}",
                "max_rel_diff_params": max(rel.values()),
                "max_abs_fdr_diff": float(
                    np.abs(fit.local_fdr - r_fdr["fdr"].to_numpy()).max()
                ),
            }
        )
    return pd.DataFrame(rows)


def markdown(table: pd.DataFrame) -> str:
    lines = [
        "| case | n | upper: book / R | lower: book / R | sigma: book / R | p0: "
        "book / R | "
        "delta: book / R | max rel. diff (delta, sigma, p0, thresholds) | max "
        "abs fdr difference |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in table.itertuples():
        lines.append(
            f"| {r.case} | {r.n:,} | {r.upper} | {r.lower} | {r.sigma} | {r.p0} "
            f"| {r.delta} | "
            f"{r.max_rel_diff_params:.2e} | {r.max_abs_fdr_diff:.2e} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[2] / "shared"
    parser.add_argument(
        "--shared",
        type=Path,
        default=default,
        help="the shared folder (default: ../shared)",
    )
    parser.add_argument("--out", type=Path, help="also write the table to this file")
    parser.add_argument(
        "--small", action="store_true", help="only the cases of at most 2,000 values"
    )
    args = parser.parse_args(argv)
    if args.small:
        print("SMALL MODE (--small): the cases of at most 2,000 values only")
    try:
        table = compare(
            args.shared / "reference" / "locfdr", 2_000 if args.small else None
        )
    except FileNotFoundError as error:  # one line that says what to pass
        raise SystemExit(f"error: {error}") from None
    text = markdown(table)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
