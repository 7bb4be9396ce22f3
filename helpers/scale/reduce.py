"""Pseudobulk of a lazily read screen as a Dask reduction (chapter 10).

The formula of :func:`helpers.pseudobulk.pseudobulk` (the paper's pseudobulk, ch. 1)::

    pseudobulk[p, g] = (1 / n_p) * sum over cells c of group p of X[c, g]

computed block by block: every row block of ``X`` becomes one task that returns float64
partial sums and cell counts **only for the groups present in that block** (the book's
kernel, :func:`helpers.pseudobulk.group_sums`, does the summing), and the partials are
added in a tree (``split_every`` at a time), so no task ever receives every block and
the partial results stay as small as the groups they hold. Where groups do not span
partitions (Tahoe plates, cells sorted by condition), each block's partial holds only
its own groups, and the tree merely stacks them.

``counts=True`` first normalises each cell to ``target_sum`` (10,000) total counts over
**all** genes, then takes ``log1p`` (natural log), then averages: the paper's pseudobulk
of log-normalised values, for files that hold raw UMI counts (the genome-wide K562 file,
Tahoe-100M).

Memory per worker: one block (and its float64 normalised copy) plus, in a merge,
``split_every`` partials and their sum, each at most groups x genes x 8 bytes. With many
groups spread over all blocks (the genome-wide screen: 9,867 x 8,248 -> 0.65 GB per
partial) use ``split_every=2``.

Group labels and the task graph: by default each block's task carries its cells' group
codes (int32, 4 bytes a cell: 400 MB for Tahoe-100M's 100.6 M cells, all in the graph
the client sends to the scheduler). With ``codes_dir`` (a folder every worker sees, e.g.
on a cluster's shared filesystem) the codes are written there once as ``.npy`` and each
task carries only (path, first row, last row) and memory-maps its slice; the graph then
holds no array larger than a task's arguments (:func:`graph_bytes` measures it).
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import dask
import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..loaders import CONTROL
from ..pseudobulk import Pseudobulk, group_sums
from .readers import LazyScreen, ScaleError

__all__ = [
    "check_counts",
    "GroupMeans",
    "PseudobulkPlan",
    "plan_pseudobulk",
    "group_means",
    "pseudobulk",
    "TARGET_SUM",
    "LABEL_SEP",
    "CodesSlice",
    "write_codes",
    "graph_bytes",
]

TARGET_SUM = 1e4
LABEL_SEP = "|"  # joins the values of several --by columns into one group label


@dataclass
class GroupMeans:
    """Mean expression per group (groups x genes) and the number of cells behind each
    row.
    """

    means: pd.DataFrame
    n_cells: pd.Series
    by: tuple[str, ...]
    dataset: str = ""

    def to_frame(self) -> pd.DataFrame:
        """The CLI's CSV table: group label, one column per gene, ``n_cells``."""
        table = self.means.copy()
        table["n_cells"] = self.n_cells
        table.index.name = "group"
        return table

    def to_pseudobulk(self, control: str | None = None) -> Pseudobulk:
        """The book's :class:`Pseudobulk` (groups become conditions; ``control`` becomes
        ``ctrl``).
        """
        means, n_cells = self.means, self.n_cells
        if control is not None and control != CONTROL:
            if control not in means.index:
                raise ScaleError(
                    f"No group {control!r} among the {len(means)} groups of "
                    f"{'/'.join(self.by)}; "
                    "name the control group that the data use."
                )
            rename = {control: CONTROL}
            means, n_cells = means.rename(index=rename), n_cells.rename(index=rename)
        means = means.rename_axis("condition")
        return Pseudobulk(
            means=means, n_cells=n_cells.rename_axis("condition"), dataset=self.dataset
        )


def _check_counts(values: np.ndarray, start: int) -> None:
    bad = (values < 0) | (values != np.floor(values))
    if bad.any():
        example = values[bad][0]
        raise ScaleError(
            "--counts needs raw counts, but X holds non-count values (e.g. "
            f"{example:.4g}, rows "
            f"from {start}); drop --counts for log-normalised data."
        )


def check_counts(screen: LazyScreen) -> None:
    """Fail fast (before the whole reduction runs) when the first row block is not
    counts.
    """
    first = screen.X.blocks[0].compute(scheduler="sync")
    _check_counts(first.data if sp.issparse(first) else np.asarray(first), 0)


def _normalise_log1p(block, target_sum: float):
    """Each row to ``target_sum`` total over all its genes, then log1p (zero rows stay
    zero).
    """
    if sp.issparse(block):
        block = sp.csr_matrix(block, dtype=np.float64, copy=True)
        totals = np.asarray(block.sum(axis=1)).ravel()
        scale = np.divide(
            target_sum, totals, out=np.zeros_like(totals), where=totals > 0
        )
        block.data *= np.repeat(scale, np.diff(block.indptr))
        np.log1p(block.data, out=block.data)
        return block
    block = np.asarray(block, dtype=np.float64)
    totals = block.sum(axis=1)
    scale = np.divide(target_sum, totals, out=np.zeros_like(totals), where=totals > 0)
    return np.log1p(block * scale[:, None])


@dataclass(frozen=True)
class CodesSlice:
    """Rows ``start:stop`` of the group codes saved at ``path`` (``.npy``): what a block
    task carries instead of the codes themselves (a few dozen bytes)."""

    path: str
    start: int
    stop: int

    def load(self) -> np.ndarray:
        return np.asarray(np.load(self.path, mmap_mode="r")[self.start : self.stop])


def write_codes(codes: np.ndarray, codes_dir) -> str:
    """Save the group codes as ``codes_dir/codes-<hash>.npy`` (once per content) and
    return the path; the folder must be one that every worker can read."""
    folder = Path(codes_dir)
    if not folder.is_dir():
        raise ScaleError(
            f"codes_dir {folder} is not a folder; give a folder on a filesystem every "
            "worker sees (create it first)."
        )
    path = folder / f"codes-{dask.base.tokenize(codes)}.npy"
    if not path.exists():
        tmp = path.with_name(path.name + f".{os.getpid()}.part")
        with open(tmp, "wb") as f:
            np.save(f, np.asarray(codes, dtype=np.int32))
        os.replace(tmp, path)
    return str(path)


def graph_bytes(plan: "PseudobulkPlan") -> pd.Series:
    """Pickled size of the plan's task graph: ``total`` and the ``largest`` single task
    (bytes). An embedded array of group codes shows up as a large task.

    ``plan``: a :func:`plan_pseudobulk` result.
    """
    sizes = [len(pickle.dumps(task, protocol=5)) for task in plan.graph.values()]
    return pd.Series({"total": int(sum(sizes)), "largest": int(max(sizes))})


def _block_partial(block, codes, start: int, counts: bool, target_sum: float, gene_idx):
    """One row block -> (group ids present, float64 sums, cell counts) via the book's
    kernel. ``codes``: the block's group codes, or a :class:`CodesSlice` of them.
    """
    if isinstance(codes, CodesSlice):
        codes = codes.load()
    if counts:
        _check_counts(block.data if sp.issparse(block) else np.asarray(block), start)
        block = _normalise_log1p(block, target_sum)
    if gene_idx is not None:
        block = block[:, gene_idx]
    if sp.issparse(block) and block.format != "csr":
        block = sp.csr_matrix(block)
    ids, local = np.unique(codes, return_inverse=True)
    sums = group_sums(block, local, len(ids))
    return ids, sums, np.bincount(local, minlength=len(ids)).astype(np.int64)


def _merge(*parts):
    """Add partials on the union of their group ids (a node of the reduction tree)."""
    ids = parts[0][0]
    for p in parts[1:]:
        ids = np.union1d(ids, p[0])
    sums = np.zeros((len(ids), parts[0][1].shape[1]), dtype=np.float64)
    n = np.zeros(len(ids), dtype=np.int64)
    for pid, psums, pn in parts:
        at = np.searchsorted(ids, pid)
        sums[at] += psums
        n[at] += pn
    return ids, sums, n


def _group_codes(obs: pd.DataFrame, by: tuple[str, ...]) -> tuple[np.ndarray, pd.Index]:
    missing = [c for c in by if c not in obs.columns]
    if missing:
        raise ScaleError(
            f"obs has no column {missing[0]!r}; --by must be one of: "
            f"{', '.join(map(str, obs.columns))}."
        )
    frame = obs[list(by)]
    if frame.isna().any().any():
        col = frame.columns[frame.isna().any()][0]
        raise ScaleError(
            f"obs[{col!r}] has {int(frame[col].isna().sum())} missing values; "
            "fill or drop those cells first."
        )
    name = LABEL_SEP.join(by)
    column = frame[by[0]]
    if len(by) == 1 and isinstance(column.dtype, pd.CategoricalDtype):
        # fast path (2 M cells: 0.02 s instead of 0.2 s): the stored codes, renumbered
        # to the sorted labels of the categories present; same result as below
        labels = column.cat.categories.astype(str)
        raw = column.cat.codes.to_numpy()
        present = np.flatnonzero(np.bincount(raw, minlength=len(labels)))
        if labels[present].is_unique:
            order = np.argsort(labels[present].to_numpy(dtype=object), kind="stable")
            new = np.full(len(labels), -1, dtype=np.int32)
            new[present[order]] = np.arange(len(present), dtype=np.int32)
            return new[raw], pd.Index(labels[present[order]], name=name)
    if len(by) > 1:
        labels = frame.astype(str).agg(LABEL_SEP.join, axis=1)
    else:
        labels = column.astype(str)
    codes, uniques = pd.factorize(labels, sort=True)
    return codes.astype(np.int32), pd.Index(uniques, name=name)


def _key_name(key) -> str:
    return str(key[0] if isinstance(key, tuple) else key)


@dataclass
class PseudobulkPlan:
    """The lazy reduction: its Dask object, the group labels, genes and graph facts."""

    result: object  # dask.delayed.Delayed -> (ids, sums, n)
    groups: pd.Index
    genes: pd.Index
    by: tuple[str, ...]
    n_blocks: int
    dataset: str = ""
    block_names: tuple = ()

    @property
    def graph(self) -> dict:
        return dict(self.result.__dask_graph__())

    @property
    def n_tasks(self) -> int:
        return len(self.graph)

    def block_keys(self) -> set:
        """Keys of the tasks that read the row blocks of X."""
        return set(self.block_names)

    def fan_in(self) -> pd.Series:
        """Number of direct inputs of every task (a merge gets at most ``split_every``
        partials).
        """
        dsk = self.graph
        return pd.Series(
            {k: len(dask.core.get_dependencies(dsk, k)) for k in dsk}, name="inputs"
        )

    def n_partials(self) -> int:
        """Number of per-block partial tasks (one per row block of X)."""
        return sum(_key_name(k).startswith("_block_partial-") for k in self.graph)

    def compute(self, **kwargs) -> GroupMeans:
        """Run the reduction (on the active Dask scheduler, or as ``kwargs`` say)."""
        return self.finish(dask.compute(self.result, **kwargs)[0])

    def finish(self, partial) -> GroupMeans:
        """Means from the reduced ``(ids, sums, n)`` (e.g. a distributed future's
        result).
        """
        ids, sums, n = partial
        means = pd.DataFrame(
            sums / n[:, None], index=self.groups[ids], columns=self.genes
        )
        return GroupMeans(
            means=means,
            n_cells=pd.Series(n, index=means.index, name="n_cells"),
            by=self.by,
            dataset=self.dataset,
        )


def plan_pseudobulk(
    screen: LazyScreen,
    by="condition",
    *,
    counts: bool = False,
    genes=None,
    target_sum: float = TARGET_SUM,
    split_every: int = 4,
    codes_dir=None,
) -> PseudobulkPlan:
    """Build (do not run) the Dask reduction of :func:`group_means`.

    ``codes_dir``: a folder every worker can read; the group codes are written there
    and the tasks carry only a reference to their slice (see the module docstring).

    ``screen``, ``by``, ``counts``, ``genes``, ``target_sum``, ``split_every``: as
    :func:`group_means`.
    """
    by = (by,) if isinstance(by, str) else tuple(by)
    if not by:
        raise ScaleError("give at least one --by column.")
    if split_every < 2:
        raise ScaleError("split_every must be at least 2.")
    codes, groups = _group_codes(screen.obs, by)
    gene_idx = None
    out_genes = screen.var_names
    if genes is not None:
        genes = pd.Index([str(g) for g in genes])
        missing = genes.difference(screen.var_names)
        if len(missing):
            raise ScaleError(
                f"{len(missing)} requested genes are not in the store (e.g. "
                f"{missing[0]!r}); "
                "check the --genes file against the store's var_names."
            )
        gene_idx = screen.var_names.get_indexer(genes)
        out_genes = screen.var_names[gene_idx]
    blocks = screen.X.to_delayed().ravel()
    sizes = screen.X.chunks[0]
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int)
    if codes_dir is not None:
        path = write_codes(codes, codes_dir)
        slices = [CodesSlice(path, int(s), int(s + n)) for s, n in zip(starts, sizes)]
    else:
        slices = [codes[s : s + n] for s, n in zip(starts, sizes)]
    partials = [
        dask.delayed(_block_partial, pure=True)(
            blk, part, int(s), counts, target_sum, gene_idx
        )
        for blk, part, s in zip(blocks, slices, starts)
    ]
    level = partials
    while len(level) > 1:
        level = [
            dask.delayed(_merge, pure=True)(*level[i : i + split_every])
            for i in range(0, len(level), split_every)
        ]
    result = (
        level[0] if len(partials) > 1 else dask.delayed(_merge, pure=True)(level[0])
    )
    return PseudobulkPlan(
        result=result,
        groups=groups,
        genes=pd.Index(out_genes, name="gene"),
        by=by,
        n_blocks=len(partials),
        dataset=screen.dataset,
        block_names=tuple(k for row in screen.X.__dask_keys__() for k in row),
    )


def group_means(
    screen: LazyScreen,
    by="condition",
    *,
    counts: bool = False,
    genes=None,
    target_sum: float = TARGET_SUM,
    split_every: int = 4,
    codes_dir=None,
    **compute_kwargs,
) -> GroupMeans:
    """Mean (log-normalised) expression per group of ``obs[by]`` (one or more columns),
    with Dask.

    Runs on whatever Dask scheduler is active (a ``distributed.Client`` if one exists,
    else ``compute_kwargs`` such as ``scheduler="threads"``). Equals
    :func:`helpers.pseudobulk.pseudobulk` to floating-point rounding
    (tests/unit/test_scale.py checks <= 1e-6 over every layout).

    ``screen``: a lazily read screen; ``by``: the obs column(s) to group by; ``counts``:
    ``X`` holds raw counts (normalise each cell to ``target_sum``, log1p, then average);
    ``genes``: the genes to keep (default: all); ``split_every``: partials merged per
    tree node; ``codes_dir``: see :func:`plan_pseudobulk`.
    """
    plan = plan_pseudobulk(
        screen,
        by,
        counts=counts,
        genes=genes,
        target_sum=target_sum,
        split_every=split_every,
        codes_dir=codes_dir,
    )
    if counts:
        check_counts(screen)
    return plan.compute(**compute_kwargs)


def pseudobulk(
    screen: LazyScreen,
    by: str = "condition",
    *,
    control: str | None = None,
    counts: bool = False,
    genes=None,
    **kwargs,
) -> Pseudobulk:
    """The book's :class:`~helpers.pseudobulk.Pseudobulk` of a lazily read screen.

    ``control``: the group that is the control (renamed ``ctrl``); ``None`` if it is
    already called ``ctrl``. Splits, baselines, the linear model and ``evaluate`` then
    run on it unchanged.

    ``screen``: a lazily read screen; ``by``: the obs column of the condition;
    ``counts``, ``genes`` and the other keyword arguments: as :func:`group_means`.
    """
    return group_means(screen, by, counts=counts, genes=genes, **kwargs).to_pseudobulk(
        control
    )
