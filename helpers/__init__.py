"""Helpers shared by the chapters of the book *Perturbation prediction: deep learning vs. linear baselines*.

Data flows one way through these modules:

``data`` (registry, verified downloads) -> ``loaders`` (canonical AnnData) -> ``pseudobulk``
-> splits -> models / baselines -> predictions -> metrics -> tables and figures.

``simulate`` provides a synthetic screen with known truth for the offline quick profile;
``profiles`` says which dataset each profile uses; ``results`` writes each chapter's tables.
Nothing is imported at package import time: ``from helpers import data, loaders``.
"""

__version__ = "0.1.0"
