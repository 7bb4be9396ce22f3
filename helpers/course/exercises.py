"""Which answers each graded exercise stores, and how closely they must match.

Every exercise of chapters 1-3 asks the student to store its answer in named
variables; the check cell ``grader.check("exN")`` after the solution checks them. A
tolerance is ``0`` for exact answers (names, counts, booleans, lists) or a
``(relative, absolute)`` pair for numbers: a value ``x`` matches the expected ``e``
when ``|x - e| <= absolute + relative * |e|`` (element-wise for tables). ``public``
names the variables the student's own check compares; the hidden tests the
instructor runs compare every variable.
"""

from __future__ import annotations

__all__ = ["EXERCISES", "SETUP_TEMPLATE", "CHECK_TEMPLATE"]

#: chapter -> exercise -> {"answers": {name: tolerance}, "public": [names], "hint": str}
EXERCISES: dict[str, dict[str, dict]] = {
    "01_data": {
        "ex1": {
            "answers": {"smallest_condition": 0, "smallest_n_cells": 0},
            "public": ["smallest_n_cells"],
            "hint": "conditions.nsmallest(1, 'n_cells') gives the row.",
        },
        "ex2": {
            "answers": {"share_log_of_mean_larger": (0.0, 0.01)},
            "public": ["share_log_of_mean_larger"],
            "hint": "a share between 0 and 1 over the top 200 genes.",
        },
        "ex3": {
            "answers": {"most_changed": 0, "most_changed_n": 0},
            "public": ["most_changed_n"],
            "hint": "(delta.loc[..., top_genes].abs() > 0.5).sum(axis=1)",
        },
    },
    "02_double_perturbations": {
        "ex1": {
            "answers": {"max_difference": (0.0, 1e-6)},
            "public": ["max_difference"],
            "hint": "pb.means.loc['KLF1'] + pb.means.loc['MAP2K6'] - pb.ctrl",
        },
        "ex2": {
            "answers": {"gears_wins": 0, "n_pairs": 0},
            "public": ["n_pairs"],
            "hint": "pivot paper_metrics to one column per method.",
        },
        "ex3": {
            "answers": {"ranking_top100": 0, "ranking_changes": 0},
            "public": ["ranking_top100"],
            "hint": "method names sorted by mean L2 (best first).",
        },
    },
    "03_linear_model": {
        "ex1": {
            "answers": {"grid": (1e-6, 1e-6), "best_k": 0},
            "public": ["best_k"],
            "hint": "grid: mean L2 with K as rows and lambda as columns.",
        },
        "ex2": {
            "answers": {"fraction_predicted": (0.0, 0.005)},
            "public": ["fraction_predicted"],
            "hint": "a Series: dataset -> fraction of held-out perturbations.",
        },
    },
}

#: the cell that opens a chapter's exercises (the grader requires it unchanged)
SETUP_TEMPLATE = (
    "# Checks of your answers (otter-grader test files; helpers/course)\n"
    "from helpers.course import checks\n\n"
    'grader = checks.notebook("{chapter}", profile)'
)
#: the check cell after each exercise (the grader requires it unchanged)
CHECK_TEMPLATE = 'grader.check("{exercise}")'
