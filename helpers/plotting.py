"""Figures shared by the chapters (introduced in chapter 1). Every figure is titled with its dataset."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .profiles import dataset_label

__all__ = ["titled", "cells_per_condition", "delta_heatmap", "strongest_changes"]


def titled(ax, title: str, dataset: str) -> None:
    """Set a two-line title: what the panel shows, and which dataset it comes from."""
    ax.set_title(f"{title}\n{dataset_label(dataset)}", fontsize=10)


def cells_per_condition(table: pd.DataFrame, dataset: str, ax=None):
    """Horizontal bars of the number of cells per condition, coloured by kind (control / single / double)."""
    ax = ax or plt.subplots(figsize=(6, max(3, 0.18 * len(table))))[1]
    colours = {"control": "0.3", "single": "tab:blue", "double": "tab:orange"}
    ax.barh(table["condition"], table["n_cells"], color=[colours.get(k, "tab:gray") for k in table["kind"]])
    ax.invert_yaxis()
    ax.tick_params(axis="y", labelsize=7)
    ax.set_xlabel("cells")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colours.values()]
    ax.legend(handles, colours.keys(), loc="lower right", fontsize=8)
    titled(ax, "Cells per condition", dataset)
    return ax


def strongest_changes(delta: pd.DataFrame, n_genes: int = 30, n_conditions: int | None = None) -> pd.DataFrame:
    """The genes with the largest mean |delta| across conditions (control row dropped)."""
    delta = delta.drop(index="ctrl", errors="ignore")
    if n_conditions is not None:
        delta = delta.loc[delta.abs().mean(axis=1).nlargest(n_conditions).index]
    genes = delta.abs().mean(axis=0).nlargest(n_genes).index
    return delta[genes]


def delta_heatmap(delta: pd.DataFrame, dataset: str, ax=None, title: str = "Change vs control (log1p units)"):
    """Heatmap of a conditions x genes table of changes, symmetric colour scale around 0."""
    ax = ax or plt.subplots(figsize=(0.25 * delta.shape[1] + 2, 0.2 * delta.shape[0] + 1.5))[1]
    limit = float(np.nanmax(np.abs(delta.to_numpy()))) or 1.0
    image = ax.imshow(delta.to_numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_xticks(range(delta.shape[1]), delta.columns, rotation=90, fontsize=7)
    ax.set_yticks(range(delta.shape[0]), delta.index, fontsize=7)
    ax.figure.colorbar(image, ax=ax, shrink=0.6, label="pseudobulk - ctrl")
    titled(ax, title, dataset)
    return ax
