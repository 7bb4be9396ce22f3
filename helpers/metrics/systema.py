"""Metric family 'systema' (to be implemented: see helpers/metrics/families.py for the contract)."""

from __future__ import annotations

import pandas as pd

from .inputs import MetricInput

NAME = "systema"
COLUMNS: list[str] = []
NEEDS_CELLS = False


def score(inp: MetricInput) -> pd.DataFrame:
    raise NotImplementedError
