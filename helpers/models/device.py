"""Where a model runs: the one device rule of the book's models (chapters 4 and 5)."""

from __future__ import annotations

import torch

__all__ = ["device_for"]


def device_for(device: str | None = None) -> torch.device:
    """``cuda`` when a GPU is available (or asked for), otherwise ``cpu``.

    ``device``: a device name to use as it is (e.g. ``"cpu"``); ``None`` picks one.
    """
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
