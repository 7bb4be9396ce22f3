"""Data profiles: which real or synthetic data each chapter uses (introduced in chapter
1).

* ``quick`` (default, offline): the real Norman 2019 subset wherever it can serve, and
  the simulator (:mod:`helpers.simulate`) where an experiment needs more conditions than
  it has.
* ``paper``: the real datasets the paper used, downloaded through the registry.

Nothing falls back from one profile to the other: an unknown profile or a dataset that
cannot be provided is an error.
"""

from __future__ import annotations

from .data import load_registry
from .errors import InputError

__all__ = [
    "PROFILES",
    "NO_PAPER_PROFILE",
    "GPU_CHAPTERS",
    "PAPER_CHECKPOINT_PARAMETERS",
    "check_profile",
    "norman_dataset",
    "dataset_label",
]

PROFILES = {
    "quick": {
        "norman": "norman2019_subset",
        "backed": None,
        "description": "offline: real Norman 2019 subset (34 conditions) + the "
        "book's simulator",
    },
    "paper": {
        "norman": "norman2019",
        "backed": "r",
        "description": (
            "the paper's real datasets, downloaded (full Norman 2019 from "
            "figshare, Adamson, Replogle K562/RPE1 "
            "and GEARS' GO gene lists from Dataverse), with GEARS' GO filter "
            "applied as in the paper"
        ),
        # what the paper profile downloads (registry names); the loaders need the GO
        # lists for the filter (the registry's datasets with a paper_id, then GEARS' GO
        # lists)
        "downloads": [name for name, e in load_registry().items() if e.paper_id]
        + ["gears_go_genes", "gears_gene2go"],
    },
}

#: chapters that have no paper profile (their ``check_profile(profile, supported=...)``
#: says so; a test checks that the two agree): a paper build executes them on the quick
#: profile and labels them so.
NO_PAPER_PROFILE = {"08_beyond_the_paper": "this chapter has no paper profile yet"}
#: chapters whose paper profile needs a GPU (README chapter table): a paper build
#: without CUDA executes them on the quick profile and labels them so (the publish
#: workflow runs them on a GPU runner where one is named).
GPU_CHAPTERS = ("04_foundation_models",)
#: chapters whose paper profile reads an atlas-scale file (registry name): the
#: genome-wide K562 file is 66 GB, more than a standard GitHub runner's 14 GB of disk.
#: A paper build runs them on the paper profile only where the file is already in the
#: cache or ``$PERTURBBOOK_ATLAS=1`` allows the download (a large runner or a
#: workstation); otherwise on the quick profile, labelled so.
ATLAS_CHAPTERS = {"10_scaling_up": "replogle_k562_gwps"}
ATLAS_ENV = "PERTURBBOOK_ATLAS"
#: the paper profile's parameter naming the released scGPT_human folder, per chapter,
#: and whether the chapter requires it (a build passes $PERTURBBOOK_SCGPT_CHECKPOINT).
PAPER_CHECKPOINT_PARAMETERS = {
    "04_foundation_models": ("checkpoint_dir", True),
    "05_embeddings": ("scgpt_checkpoint", True),
}


def _labels() -> dict[str, str]:
    """Registry name -> label, for every registry entry that has one
    (``data/registry.toml``)."""
    return {name: e.label for name, e in load_registry().items() if e.label}


#: registry name -> label (a view of the registry's ``label`` fields, read at import)
_LABELS = _labels()


def check_profile(profile: str, supported=None) -> dict:
    """The settings of ``profile``; a clear error for anything but ``quick`` or
    ``paper``, and for a profile the chapter does not have (``supported``: the profiles
    it has; default: all)."""
    if profile not in PROFILES:
        raise InputError(
            f"Unknown data profile {profile!r}: use one of {sorted(PROFILES)} (set it "
            "in the parameters cell)."
        )
    if supported is not None and profile not in supported:
        raise InputError(
            f"This chapter has no {profile!r} profile: it runs with profile = "
            f"{' or '.join(repr(p) for p in supported)} only (set it in the parameters "
            "cell); the README's chapter table says which data each chapter uses."
        )
    return PROFILES[profile]


def norman_dataset(profile: str) -> str:
    """Registry name of the Norman 2019 data of a profile."""
    return check_profile(profile)["norman"]


def dataset_label(name: str) -> str:
    """Human-readable label of the dataset ``name`` for figure titles and tables (the
    registry's ``label``; synthetic data say so)."""
    if name.startswith("simulated"):
        return f"SYNTHETIC: {name} (book simulator, not real data)"
    return _labels().get(name, name)
