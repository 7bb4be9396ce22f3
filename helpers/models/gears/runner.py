"""Train and run the real GEARS library (``cell-gears``) on the book's splits (chapter
4).

:mod:`.method` plugs it into :func:`helpers.benchmark.run` (:class:`GearsMethod`).

GEARS needs a gene -> GO table and writes files relative to the working directory, so
each run happens in its own temporary folder, with ``gene2go_all.pkl`` built from the
book's offline annotation source (:mod:`helpers.annotations`) so that GEARS never
downloads anything. The book's split is handed over as a GEARS "custom" split.
Conditions whose genes have no GO annotation cannot enter GEARS' perturbation graph;
they are reported (the paper's GEARS runs dropped them too).

Settings follow the benchmark (method spec section 5): hidden size 64, Adam lr 1e-3 with
weight decay 5e-4, the learning rate halved every epoch (GEARS' StepLR), best epoch by
validation, prediction = mean over 300 random control cells.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ...errors import InputError
from ...loaders import condition_genes
from ...predictions import Predictions
from ...splits import Split
from ...resources import peak_rss_gb as _peak_rss_gb

__all__ = ["to_gears_condition", "GearsRun", "prepare_gears_data", "train_gears"]


def to_gears_condition(condition: str) -> str:
    """Canonical -> GEARS names: ``ctrl`` -> ``ctrl``, ``A`` -> ``A+ctrl``, ``A+B`` ->
    ``A+B``."""
    genes = condition_genes(condition)
    if not genes:
        return "ctrl"
    return f"{genes[0]}+ctrl" if len(genes) == 1 else condition


@contextlib.contextmanager
def _working_directory(path: Path):
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


class _SeriesRowsCSR(sp.csr_matrix):
    """A CSR matrix that also takes a pandas boolean Series as row index (as scipy <
    1.15 did).

    ``gears/gears.py`` (cell-gears 0.1.2, ``GEARS.__init__``) computes the control mean
    as ``np.mean(self.adata.X[self.adata.obs.condition == 'ctrl'], axis=0)``; scipy >=
    1.15 rejects the Series (``'Series' object has no attribute 'nonzero'``). Converting
    pandas indexers to NumPy arrays keeps GEARS unchanged and lets any scipy run it.
    """

    def __getitem__(self, key):
        if isinstance(key, tuple):
            key = tuple(
                k.to_numpy() if isinstance(k, (pd.Series, pd.Index)) else k for k in key
            )
        elif isinstance(key, (pd.Series, pd.Index)):
            key = key.to_numpy()
        return super().__getitem__(key)


def _top_go_neighbours(df_jaccard: pd.DataFrame, k: int) -> pd.DataFrame:
    """Each target's ``k + 1`` highest-``importance`` GO neighbours, targets in sorted
    order.

    What ``gears/utils.py`` ``get_similarity_network`` computes with
    ``df_jaccard.groupby('target').apply(lambda x: x.nlargest(k + 1, ['importance']))``:
    under pandas 3 ``groupby.apply`` no longer hands the grouping column to the
    function, so GEARS' result has no ``target`` column (``KeyError: 'target'``).
    Iterating over the groups gives the same rows on pandas 2 and 3.
    """
    parts = [
        group.nlargest(k + 1, ["importance"])
        for _, group in df_jaccard.groupby("target")
    ]
    return pd.concat(parts).reset_index(drop=True)


@contextlib.contextmanager
def _gears_pandas3_compat():
    """Run GEARS (cell-gears 0.1.2) under pandas 3 as under pandas 2, without forking
    it; scoped to the block.

    Two places in GEARS rely on pandas 2 behaviour that pandas 3 removed:

    * ``gears/pertdata.py`` ``PertData.create_cell_graph_dataset``:
      ``adata_.obs['condition_name'][0]`` reads the first row of a Series indexed by
      cell names. pandas 2 fell back to position for an integer key on a non-integer
      index; pandas 3 looks the label up (``KeyError: 0``). Inside the block
      ``Series.__getitem__`` falls back to ``.iloc`` in exactly that case (an integer
      key, a non-integer index, a missing label), as pandas 2 did.
    * ``gears/utils.py`` ``get_similarity_network`` (GO graph,
      ``default_pert_graph=False``): ``groupby('target').apply(...)`` drops ``target``
      under pandas 3 (``KeyError: 'target'``). Inside the block
      ``gears.gears.get_similarity_network`` (the name ``GEARS.model_initialize`` calls)
      builds the GO graph with :func:`_top_go_neighbours`; every other call goes to
      GEARS' own function.

    * ``gears/pertdata.py`` ``PertData.new_data_process`` saves the AnnData with
      ``write_h5ad``; pandas 3 stores text as its ``str`` dtype, which anndata writes
      only with ``allow_write_nullable_strings`` (switched on inside the block, where
      anndata has the setting).

    Under pandas 2 none of this changes a result.
    """
    import anndata as ad
    import gears.gears as gears_module
    import gears.utils as gears_utils

    original_getitem = pd.Series.__getitem__
    original_network = gears_module.get_similarity_network

    def getitem(self, key):
        # an integer that is not a label of a non-integer index: by position, as pandas
        # 2 did (there with a FutureWarning, so it is taken here before pandas sees it);
        # all else as pandas does it
        if (
            isinstance(key, (int, np.integer))
            and not isinstance(key, bool)
            and not pd.api.types.is_integer_dtype(self.index.dtype)
            and key not in self.index
        ):
            return self.iloc[key]
        return original_getitem(self, key)

    def similarity_network(
        network_type,
        adata,
        threshold,
        k,
        data_path,
        data_name,
        split,
        seed,
        train_gene_set_size,
        set2conditions,
        default_pert_graph=True,
        pert_list=None,
    ):
        if network_type == "go" and not default_pert_graph:
            return _top_go_neighbours(
                gears_utils.make_GO(data_path, pert_list, data_name), k
            )
        return original_network(
            network_type,
            adata,
            threshold,
            k,
            data_path,
            data_name,
            split,
            seed,
            train_gene_set_size,
            set2conditions,
            default_pert_graph,
            pert_list,
        )

    strings = (
        ad.settings.override(allow_write_nullable_strings=True)
        if hasattr(ad.settings, "allow_write_nullable_strings")
        else contextlib.nullcontext()
    )
    pd.Series.__getitem__ = getitem
    gears_module.get_similarity_network = similarity_network
    try:
        with strings:
            yield
    finally:
        pd.Series.__getitem__ = original_getitem
        gears_module.get_similarity_network = original_network


@dataclass
class GearsRun:
    """A trained GEARS model with what it could not use."""

    model: object
    genes: list[str]
    dataset: str
    dropped_conditions: list[str] = field(
        default_factory=list
    )  # targets without GO annotation
    seconds: float = 0.0
    peak_rss_gb: float = 0.0
    epochs: int = 0
    workdir: str = ""
    log: str = ""

    def predict(
        self, conditions, *, seed: int = 0, split_seed: int | None = None
    ) -> tuple[Predictions, list[str]]:
        """Mean predicted expression per condition (GEARS samples 300 control cells;
        seeded)."""
        import torch

        pert_list = set(self.model.pert_list)
        usable = [
            c for c in conditions if all(g in pert_list for g in condition_genes(c))
        ]
        unpredictable = [c for c in conditions if c not in usable]
        np.random.seed(seed)
        torch.manual_seed(seed)
        with (
            _working_directory(Path(self.workdir)),
            contextlib.redirect_stdout(io.StringIO()),
            _gears_pandas3_compat(),
        ):
            raw = self.model.predict([condition_genes(c) for c in usable])
        rows = [raw["_".join(condition_genes(c))] for c in usable]
        frame = pd.DataFrame(
            np.array(rows).reshape(len(usable), len(self.genes)),
            index=pd.Index(usable, name="condition"),
            columns=self.genes,
        )
        return Predictions(frame, "gears", self.dataset, split_seed), unpredictable


def prepare_gears_data(
    adata,
    split: Split,
    gene2go: dict[str, set[str]],
    folder: str | os.PathLike,
    *,
    batch_size: int = 32,
    test_batch_size: int = 128,
    log: io.StringIO | None = None,
):
    """GEARS' data processing for ``adata`` and ``split`` in ``folder``:
    ``PertData.new_data_process`` (DE genes, dense per-cell graphs), the custom split
    and the data loaders. Returns (pert_data, genes, conditions dropped for lack of GO
    annotation). This is the memory-hungry part of a GEARS run
    (``benchmarks/bench_paper_profile.py`` measures it); :func:`train_gears` calls it.
    """
    from gears import PertData

    conditions = adata.obs["condition"].astype(str).to_numpy()
    annotated = set(gene2go)
    keep_conditions = [
        c
        for c in pd.unique(conditions)
        if all(g in annotated for g in condition_genes(c))
    ]
    dropped = sorted(set(pd.unique(conditions)) - set(keep_conditions))
    mask = np.isin(conditions, keep_conditions)
    X = adata.X[np.flatnonzero(mask)] if adata.isbacked else adata.X[mask]
    X = sp.csr_matrix(X, dtype=np.float32)
    import anndata as ad

    genes = list(map(str, adata.var_names))
    gears_adata = ad.AnnData(
        X=X,
        obs=pd.DataFrame(
            {
                "condition": [to_gears_condition(c) for c in conditions[mask]],
                "cell_type": "cell",
            },
            index=[f"cell{i}" for i in range(int(mask.sum()))],
        ),
        var=pd.DataFrame({"gene_name": genes}, index=genes),
    )
    set2conditions = {
        s: [to_gears_condition(c) for c in split.conditions(s) if c in keep_conditions]
        for s in ("train", "val", "test")
    }
    if not set2conditions["val"]:
        raise InputError(
            "GEARS selects its best epoch on validation conditions; the split "
            "has none it can use."
        )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    log = log if log is not None else io.StringIO()
    with (
        _working_directory(folder),
        contextlib.redirect_stdout(log),
        contextlib.redirect_stderr(log),
        _gears_pandas3_compat(),
    ):
        data_path = folder / "data"
        data_path.mkdir(exist_ok=True)
        with open(data_path / "gene2go_all.pkl", "wb") as fh:
            pickle.dump(gene2go, fh)  # pre-placed, so GEARS does not download its own
        pert_data = PertData(str(data_path), default_pert_graph=False)
        pert_data.new_data_process(dataset_name="book", adata=gears_adata)
        with open(folder / "split.pkl", "wb") as fh:
            pickle.dump(set2conditions, fh)
        pert_data.prepare_split(
            split="custom", split_dict_path=str(folder / "split.pkl")
        )
        pert_data.get_dataloader(batch_size=batch_size, test_batch_size=test_batch_size)
        pert_data.adata.X = _SeriesRowsCSR(
            pert_data.adata.X
        )  # see _SeriesRowsCSR (scipy >= 1.15)
    return pert_data, genes, dropped


def train_gears(
    adata,
    split: Split,
    gene2go: dict[str, set[str]],
    *,
    epochs: int = 20,
    hidden_size: int = 64,
    batch_size: int = 32,
    test_batch_size: int = 128,
    seed: int = 0,
    device: str | None = None,
    workdir: str | os.PathLike | None = None,
) -> GearsRun:
    """Train GEARS on the training conditions of ``split`` (validation: its ``val``
    conditions).

    ``adata``: the book's canonical AnnData (cells of every condition; ``X``
    log-normalised).

    ``split``: its ``train`` conditions are fitted, its ``val`` conditions pick the
    epoch; ``gene2go``: gene -> GO terms (:func:`helpers.annotations.gene2go`);
    ``epochs``, ``hidden_size``, ``batch_size``, ``test_batch_size``: GEARS' settings;
    ``seed``: seeds torch and NumPy; ``device``: ``None`` picks one; ``workdir``: GEARS'
    working folder (default: a new temporary one).
    """
    import torch
    from gears import GEARS

    from ..device import device_for

    dev = str(device_for(device))
    torch.manual_seed(seed)
    np.random.seed(seed)
    folder = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="gears-"))
    start = time.perf_counter()
    log = (
        io.StringIO()
    )  # GEARS prints its progress; kept in GearsRun.log instead of flooding the page
    pert_data, genes, dropped = prepare_gears_data(
        adata,
        split,
        gene2go,
        folder,
        batch_size=batch_size,
        test_batch_size=test_batch_size,
        log=log,
    )
    if not pert_data.set2conditions.get("test"):
        # no test conditions among the cells (GearsMethod: the held-out cells are never
        # handed over); GEARS would otherwise evaluate an empty test loader after
        # training
        pert_data.dataloader.pop("test_loader", None)
    with (
        _working_directory(folder),
        contextlib.redirect_stdout(log),
        contextlib.redirect_stderr(log),
        _gears_pandas3_compat(),
    ):
        model = GEARS(pert_data, device=dev)
        model.model_initialize(hidden_size=hidden_size)
        model.train(epochs=epochs, lr=1e-3, weight_decay=5e-4)
    return GearsRun(
        model,
        genes,
        adata.uns.get("perturbbook", {}).get("dataset", ""),
        dropped,
        time.perf_counter() - start,
        _peak_rss_gb(),
        epochs,
        str(folder),
        log.getvalue(),
    )
