"""Benchmark: fit + predict of the linear model on a Replogle-sized problem.

5,000 genes x 1,100 perturbations (825 in training, 275 to predict), K = 10, lambda =
0.1, both with the training-PCA embeddings and with a transfer embedding. Target (issue:
chapter 3): one variant under 1 s on a 2-core machine. Synthetic pseudobulks; prints the
median of 5 repeats.

    python benchmarks/bench_linear_model.py [--genes 5000] [--perturbations 1100]
    python benchmarks/bench_linear_model.py --small   # seconds: 300 genes x 80 perts
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd

from helpers import linear
from helpers.pseudobulk import Pseudobulk


def make_pseudobulk(n_genes: int, n_perts: int, seed: int) -> Pseudobulk:
    rng = np.random.default_rng(seed)
    genes = [f"G{i}" for i in range(n_genes)]
    targets = genes[
        :n_perts
    ]  # every target is measured, as for Replogle's essential genes
    programs = rng.normal(size=(n_genes, 20))
    ctrl = rng.gamma(1.0, 1.0, n_genes)
    effects = programs @ rng.normal(0, 0.05, (20, n_perts)) + rng.normal(
        0, 0.05, (n_genes, n_perts)
    )
    means = np.vstack([ctrl, (ctrl[:, None] + effects).T])
    index = ["ctrl", *targets]
    return Pseudobulk(
        pd.DataFrame(means, index=index, columns=genes),
        pd.Series(100, index=index),
        "synthetic",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--genes", type=int, default=5000)
    parser.add_argument("--perturbations", type=int, default=1100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--small",
        action="store_true",
        help="quick check that it runs: 300 genes x 80 perturbations, 1 repeat",
    )
    args = parser.parse_args()
    if args.small:
        args.genes, args.perturbations, args.repeats = 300, 80, 1
        print("SMALL MODE (--small): not the Replogle-sized problem the target is for")
    pb = make_pseudobulk(args.genes, args.perturbations, 0)
    other = make_pseudobulk(args.genes, args.perturbations, 1)
    conditions = list(pb.conditions[1:])
    n_train = int(0.75 * len(conditions))
    train, test = pb.subset(["ctrl", *conditions[:n_train]]), conditions[n_train:]
    variants = {
        "training PCA G, P": {},
        "P from another screen": {
            "perturbation_embedding": linear.pca_perturbation_embedding(other)
        },
    }
    print(
        f"linear model, {args.genes:,} genes x {args.perturbations:,} perturbations "
        f"({n_train} train, {len(test)} predicted), K=10, lambda=0.1; SYNTHETIC "
        "pseudobulks"
    )
    for name, kwargs in variants.items():
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            fit = linear.fit_linear_model(train, predict_conditions=test, **kwargs)
            fit.predict(test)
            times.append(time.perf_counter() - start)
        median = statistics.median(times)
        print(
            f"  {name:<24} fit + predict: median {median:.3f} s (min "
            f"{min(times):.3f})   "
            f"{'ok' if median < 1 else 'MISSED'} (target < 1 s)"
        )


if __name__ == "__main__":
    main()
