"""Helpers shared by the chapters of the book *Perturbation prediction: deep learning
vs. linear baselines*.

Data flows one way through these modules:

``data`` (registry, verified downloads) -> ``loaders`` (canonical AnnData) ->
``pseudobulk`` -> ``splits`` -> ``baselines`` / models -> ``predictions`` (one contract)
-> ``metrics.evaluate`` -> ``plotting`` and ``results`` (tables and figures).
``benchmark`` runs that loop over splits; ``published`` loads the paper's own numbers,
always labelled "published".

``conditions`` holds the condition grammar every step shares (``ctrl``, ``A``, ``A+B``);
``simulate`` provides a synthetic screen with known truth for the offline quick profile;
``profiles`` says which dataset each profile uses; ``results`` writes each chapter's
tables. Nothing is imported at package import time: ``from helpers import data,
loaders``.
"""

__version__ = "0.1.0"

import warnings as _warnings

# tqdm.autonotebook warns that ipywidgets is missing whenever a library imports it
# inside a notebook; plain-text progress bars are what the book wants, so the warning is
# noise on every page.
_warnings.filterwarnings("ignore", message="IProgress not found", module="tqdm")
