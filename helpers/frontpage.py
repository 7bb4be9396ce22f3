"""The front page's figure and answer, made by the build from the chapters' results.

The paper's Figure 1 in one picture: every model beside predicting **no change** and the
**additive** baseline, as mean L2 on held-out double perturbations with intervals. Two
panels:

* **published**: the paper's own per-perturbation results (Source Data, full Norman
  2019, the test doubles of its five splits), as chapter 2 saves them
  (``02_double_perturbations/published_per_perturbation_metrics.csv``);
* **this build**: every model the book runs on double perturbations, scored by the book
  on the data of the profile the build used, as chapter 4 saves them
  (``04_foundation_models/per_perturbation_metrics.csv``: the baselines, the book's tiny
  transformer and the real GEARS library on the same held-out doubles). Rows of
  simulated data are labelled SYNTHETIC in the caption.

Intervals resample conditions and split seeds as crossed factors
(:mod:`helpers.uncertainty`), and the three-sentence answer under the figure is
generated from paired sign-flip tests against the baselines
(:func:`helpers.compare.paired_test`, exact at small n), never from point estimates
alone.

A result file that is missing, or that holds a method this module has no label for, is
an error (:class:`FrontPageError`): the figure must change when the results change, not
drop rows silently. ``helpers.execute`` calls :func:`write` after a full build; ``python
-m helpers.frontpage --results _build/results --out DIR`` does the same by hand.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import uncertainty
from .errors import BookError

__all__ = [
    "FrontPageError",
    "KNOWN_METHODS",
    "SOURCES",
    "figure_data",
    "answer",
    "draw",
    "write",
]

FIGURE_NAME = "figure1.png"


class FrontPageError(BookError, RuntimeError):
    """A result file the front page needs is missing or holds what it cannot show."""


@dataclass(frozen=True)
class Method:
    label: str
    kind: str  # "baseline" or "deep"


# Every method the figure can show. A new method in a result file must be added here
# (with its kind), or the build stops: the figure never drops a row it does not know.
KNOWN_METHODS = {
    "no_change": Method("No change", "baseline"),
    "additive": Method("Additive", "baseline"),
    "mean": Method("Mean", "baseline"),
    "gears": Method("GEARS", "deep"),
    "scgpt": Method("scGPT", "deep"),
    "scfoundation": Method("scFoundation", "deep"),
    "geneformer": Method("Geneformer*", "deep"),
    "scbert": Method("scBERT*", "deep"),
    "uce": Method("UCE*", "deep"),
    "cpa": Method("CPA", "deep"),
    # the book's own models (never a published name: chapter 4)
    "tiny_transformer": Method("tiny transformer (book)", "deep"),
    "scgpt_human_book": Method("scGPT_human, fine-tuned by the book", "deep"),
    "cpa_book": Method("CPA, trained by the book", "deep"),
}


@dataclass(frozen=True)
class Source:
    panel: str
    chapter: str
    name: str
    split: str | None  # keep only rows of this split (None: all rows)
    what: str


SOURCES = (
    Source(
        "published",
        "02_double_perturbations",
        "published_per_perturbation_metrics",
        None,  # Fig. 1 shows all 310 held-out doubles (test and validation of 5 splits)
        "the paper's Source Data (published)",
    ),
    Source(
        "this build",
        "04_foundation_models",
        "per_perturbation_metrics",
        None,
        "run and scored by the book in this build",
    ),
)

_FACTORS = ["condition", "seed"]


def _read(results: Path, source: Source) -> pd.DataFrame:
    path = Path(results) / source.chapter / f"{source.name}.csv"
    if not path.exists():
        raise FrontPageError(
            f"The front page needs {path} (chapter {source.chapter}); it is missing: "
            "execute that chapter first (bash scripts/build_book.sh)."
        )
    table = pd.read_csv(path)
    needed = {"dataset", "method", "seed", "condition", "l2"}
    if not needed <= set(table.columns):
        raise FrontPageError(
            f"{path} lacks the columns {sorted(needed - set(table.columns))}: it "
            "is not a "
            "per-perturbation metrics table."
        )
    if source.split is not None and "split" in table.columns:
        table = table[table["split"] == source.split]
    unknown = sorted(set(table["method"]) - set(KNOWN_METHODS))
    if unknown:
        raise FrontPageError(
            f"{path} holds methods the front-page figure does not know: {unknown}; add "
            "them to helpers.frontpage.KNOWN_METHODS with their kind."
        )
    if table.empty:
        raise FrontPageError(f"{path} has no rows to show.")
    return table


def figure_data(
    results: str | Path, *, n_boot: int = 2000, seed: int = 0
) -> pd.DataFrame:
    """One row per (panel, method): mean L2 with a 95% interval over conditions x split
    seeds, n conditions and seeds, the dataset(s) and whether they are synthetic."""
    rows = []
    for source in SOURCES:
        table = _read(Path(results), source)
        for method, part in table.groupby("method", sort=False):
            ci = uncertainty.crossed_interval(
                part, "l2", _FACTORS, n_boot=n_boot, seed=seed
            )
            datasets = sorted(set(part["dataset"]))
            rows.append(
                {
                    "panel": source.panel,
                    "source": source.what,
                    "chapter": source.chapter,
                    "method": method,
                    "label": KNOWN_METHODS[method].label,
                    "kind": KNOWN_METHODS[method].kind,
                    "mean_l2": ci["estimate"],
                    "lower": ci["lower"],
                    "upper": ci["upper"],
                    "n_conditions": ci["n_condition"],
                    "n_seeds": ci["n_seed"],
                    "dataset": ", ".join(datasets),
                    "synthetic": any(d.startswith("simulated") for d in datasets),
                }
            )
    return pd.DataFrame(rows)


def _paired(results: Path, source: Source, *, n_boot: int, seed: int) -> pd.DataFrame:
    """Each deep model against additive and no change:
    :func:`helpers.compare.paired_test` (sign flips per double decide; exact at small n,
    where five doubles can never reach p < 0.05), as ``direction`` better / worse /
    inconclusive."""
    from .compare import paired_test

    table = _read(results, source).assign(dataset="all")
    out = []
    for method in table["method"].unique():
        if KNOWN_METHODS[method].kind != "deep":
            continue
        for baseline in ("additive", "no_change"):
            if baseline not in set(table["method"]):
                continue
            r = paired_test(
                table,
                method,
                baseline,
                value="l2",
                n_boot=n_boot,
                n_perm=n_boot,
                seed=seed,
            ).iloc[0]
            direction = (
                "better" if r["better"] else "worse" if r["worse"] else ("inconclusive")
            )
            out.append(
                {
                    "method": method,
                    "baseline": baseline,
                    "direction": direction,
                    "n_conditions": int(r["n_conditions"]),
                    "p_text": r["p_text"],
                }
            )
    return pd.DataFrame(out)


def _names(methods) -> str:
    labels = [KNOWN_METHODS[m].label for m in methods]
    if not labels:
        return "none"
    return (
        labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]
    )


def answer(results: str | Path, *, n_boot: int = 2000, seed: int = 0) -> str:
    """Three sentences, each generated from paired tests (deep model vs baseline, signs
    flipped per double): the published verdict, the control that could
    refute it (no change), and what this build's own runs can say."""
    results = Path(results)
    published, built = (_paired(results, s, n_boot=n_boot, seed=seed) for s in SOURCES)
    data = figure_data(results, n_boot=n_boot, seed=seed)
    pub = data[data["panel"] == "published"]
    n_pub = int(pub["n_conditions"].max())
    vs_add = published[published["baseline"] == "additive"]
    vs_none = published[published["baseline"] == "no_change"]
    beats = vs_add.loc[vs_add["direction"] == "better", "method"]
    loses = vs_add.loc[vs_add["direction"] == "worse", "method"]
    s1 = (
        f"In the paper's published results ({n_pub} held-out doubles of full "
        "Norman 2019 "
        f"over {int(pub['n_seeds'].max())} splits), {len(loses)} of {len(vs_add)} deep "
        f"models have a larger error than adding the two single effects, and "
        f"{'none beats it' if beats.empty else _names(beats) + ' beat it'} (paired "
        "sign-flip tests over doubles, p < 0.05)."
    )
    better_than_none = vs_none.loc[vs_none["direction"] == "better", "method"]
    worse_than_none = vs_none.loc[vs_none["direction"] == "worse", "method"]
    s2 = (
        f"The deep models are not useless: {len(better_than_none)} of "
        f"{len(vs_none)} beat "
        "predicting no change"
        + (
            f", while {_names(worse_than_none)} does worse than no change"
            if len(worse_than_none)
            else ""
        )
        + ": the question is whether they add anything beyond the additive baseline."
    )
    ours = data[data["panel"] == "this build"]
    n_ours = int(ours["n_conditions"].max())
    label = (
        "SYNTHETIC simulated data"
        if ours["synthetic"].any()
        else ("real data: " + ", ".join(sorted(set(ours["dataset"]))))
    )
    vs_add_ours = built[built["baseline"] == "additive"] if len(built) else built
    if len(vs_add_ours) and (vs_add_ours["direction"] == "inconclusive").all():
        verdict = (
            f"at n = {n_ours} held-out doubles no paired test against the additive "
            "baseline reaches p < 0.05, so this run alone cannot rank them; the paper "
            "profile can"
        )
    else:
        verdict = (
            "; ".join(
                f"{KNOWN_METHODS[r.method].label} "
                + {
                    "better": "beats",
                    "worse": "is worse than",
                    "inconclusive": "cannot be told apart from",
                }[r.direction]
                + " additive"
                for r in vs_add_ours.itertuples()
            )
            or "no deep model ran"
        )
    s3 = (
        f"This build reruns {_names(ours.loc[ours['kind'] == 'deep', 'method'])} "
        "beside "
        f"the baselines ({label}): {verdict}."
    )
    return " ".join([s1, s2, s3])


def draw(data: pd.DataFrame):
    """The two-panel figure (matplotlib): mean L2 with its interval per method;
    baselines grey, deep models coloured; each panel titled with the data it shows."""
    import matplotlib.pyplot as plt

    panels = list(dict.fromkeys(data["panel"]))
    fig, axes = plt.subplots(
        1,
        len(panels),
        figsize=(10, 4.2),
        squeeze=False,
        gridspec_kw={
            "width_ratios": [max(3, (data["panel"] == p).sum()) for p in panels]
        },
    )
    for ax, panel in zip(axes[0], panels):
        part = data[data["panel"] == panel].sort_values(
            ["kind", "mean_l2"], ascending=[True, True]
        )
        y = np.arange(len(part))
        colours = ["#7f7f7f" if k == "baseline" else "#1f77b4" for k in part["kind"]]
        ax.hlines(y, part["lower"], part["upper"], color=colours, lw=2)
        ax.scatter(part["mean_l2"], y, color=colours, zorder=3)
        for name, colour in (("additive", "#d62728"), ("no_change", "#2ca02c")):
            hit = part[part["method"] == name]
            if len(hit):
                ax.axvline(float(hit["mean_l2"].iloc[0]), color=colour, ls="--", lw=1)
        ax.set_yticks(y, part["label"])
        ax.invert_yaxis()
        first = part.iloc[0]
        tag = "SYNTHETIC" if part["synthetic"].any() else first["dataset"]
        ax.set_title(
            f"{panel}: {tag}\n{int(part['n_conditions'].max())} doubles x "
            f"{int(part['n_seeds'].max())} split(s), 95% intervals",
            fontsize=10,
        )
    fig.suptitle(
        "Deep models vs. no change (green) and additive (red): the paper's Fig. 1",
        fontsize=11,
    )
    fig.supxlabel("mean L2 on held-out doubles (lower is better)", fontsize=10)
    fig.tight_layout()
    return fig


def caption(data: pd.DataFrame) -> str:
    """The figure's caption: which data each panel shows, with the synthetic label."""
    parts = []
    for panel in dict.fromkeys(data["panel"]):
        part = data[data["panel"] == panel]
        synthetic = (
            " (**SYNTHETIC**: the book's simulator)" if part["synthetic"].any() else ""
        )
        parts.append(
            f"*{panel}*: {part['source'].iloc[0]}, dataset "
            f"`{part['dataset'].iloc[0]}`{synthetic}, "
            f"{int(part['n_conditions'].max())} held-out doubles x "
            f"{int(part['n_seeds'].max())} split(s) (chapter "
            f"{part['chapter'].iloc[0][:2]})"
        )
    return (
        "Mean L2 between predicted and observed expression change on held-out double "
        "perturbations, with 95% intervals resampling doubles and splits. "
        + "; ".join(parts)
        + ". Made by the build from the chapters' result files (`helpers.frontpage`)."
    )


def write(results: str | Path, out: str | Path) -> dict[str, Path | str]:
    """Draw the figure into ``out/figure1.png`` and return its path, caption and
    answer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = figure_data(results)
    fig = draw(data)
    path = out / FIGURE_NAME
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)
    data.to_csv(out / "figure1.csv", index=False)
    return {"figure": path, "caption": caption(data), "answer": answer(results)}


def markdown(made: dict, image: str) -> str:
    """The front page's block: the figure with its caption, then the answer."""
    return "\n".join(
        [
            f"```{{figure}} {image}",
            ":name: front-figure",
            ":alt: Mean L2 of every model beside the no-change and additive baselines",
            ":width: 100%",
            "",
            made["caption"],
            "```",
            "",
            f"**The answer.** {made['answer']}",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.frontpage", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--results", default="_build/results", type=Path)
    parser.add_argument("--out", default="_build/frontpage", type=Path)
    args = parser.parse_args(argv)
    try:
        made = write(args.results, args.out)
    except FrontPageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(made["figure"])
    print(made["answer"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
