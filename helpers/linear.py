"""The paper's linear model ``Y ~ G W P^T + b`` (introduced in chapter 3).

Notation (genes ``g``, conditions ``p``): ``c`` is the control pseudobulk and
``Y[g, p] = pseudobulk[p, g] - c[g]`` the change matrix of the **training** conditions.

* ``G`` (genes x K): a gene embedding. Default: the genes' scores in a PCA of the
  training pseudobulk matrix (genes x training conditions; genes are the observations,
  centred, not scaled), K = 10.
* ``P`` (conditions x K'): a perturbation embedding. Default: the row of ``G`` of the
  target gene (``ctrl`` = 0; a double ``A+B`` = ``G_A + G_B``), so only perturbations of
  measured genes can be embedded. Variants: random, an external table, or the PCA of
  another screen's pseudobulk.
* ``b = mean_p Y[:, p]`` over training conditions, ``Y~ = Y - b 1^T``, and ``W`` (K x
  K') the two-sided ridge solution

      W = (G^T G + lambda I)^-1  G^T Y~ P  (P^T P + lambda I)^-1,      lambda = 0.1,

  which minimises ``||Y~ - G W P^T||_F^2 + lambda ||W||^2``-type penalties on both sides
  (see chapter 3 for the derivation).
* Prediction: ``y_hat_p = c + b + G W P_p``.

Perturbations whose embedding is unknown are reported as unpredictable
(``LinearFit.unpredictable``), never silently predicted as the mean.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pandas as pd
from sklearn.utils.extmath import randomized_svd

from .conditions import CONTROL, condition_genes
from .errors import BookError, InputError
from .predictions import Predictions
from .pseudobulk import Pseudobulk

__all__ = [
    "EmbeddingError",
    "solve_two_sided_ridge",
    "pca_scores",
    "pca_gene_embedding",
    "random_gene_embedding",
    "perturbation_embedding_from_genes",
    "random_perturbation_embedding",
    "pca_perturbation_embedding",
    "align_gene_embedding",
    "LinearFit",
    "fit_linear_model",
    "linear_model",
    "paper_variants",
    "embedding_variants",
    "random_embedding_like",
    "random_control_name",
    "RandomControls",
    "random_control_variants",
]


class EmbeddingError(BookError, ValueError):
    """An embedding table does not fit the data (the message says how)."""


def solve_two_sided_ridge(
    G: np.ndarray, Y: np.ndarray, P: np.ndarray, ridge: float
) -> np.ndarray:
    """``W = (G^T G + ridge I)^-1 G^T Y P (P^T P + ridge I)^-1`` for ``Y ~ G W P^T``.

    Shapes: G (n_genes x K), Y (n_genes x n_conditions), P (n_conditions x K');
    returns K x K'.
    """
    if ridge < 0:
        raise InputError("ridge must be non-negative.")
    K, Kp = G.shape[1], P.shape[1]
    left = np.linalg.solve(G.T @ G + ridge * np.eye(K), G.T @ Y @ P)
    right = P.T @ P + ridge * np.eye(Kp)
    return np.linalg.solve(right.T, left.T).T


def pca_scores(matrix: np.ndarray, k: int) -> np.ndarray:
    """Scores of the rows of ``matrix`` on its first ``k`` principal components (columns
    centred, signs fixed)."""
    centred = matrix - matrix.mean(axis=0, keepdims=True)
    k = min(k, min(centred.shape))
    if min(centred.shape) <= 50:
        U, S, _ = np.linalg.svd(centred, full_matrices=False)
        U, S = U[:, :k], S[:k]
    else:
        U, S, _ = randomized_svd(centred, n_components=k, random_state=0)
    # fix the sign of each component (largest |loading| positive) so results do not flip
    # between runs
    signs = np.sign(U[np.argmax(np.abs(U), axis=0), np.arange(U.shape[1])])
    signs[signs == 0] = 1
    return U * S * signs


def pca_gene_embedding(train_pb: Pseudobulk, k: int = 10) -> pd.DataFrame:
    """``G``: the genes' scores in a PCA of the training pseudobulk (genes x training
    conditions).

    ``train_pb``: the training pseudobulks; ``k``: the number of components.
    """
    X = train_pb.means.to_numpy().T  # genes x conditions
    scores = pca_scores(X, k)
    return pd.DataFrame(
        scores,
        index=train_pb.genes,
        columns=[f"PC{i + 1}" for i in range(scores.shape[1])],
    )


def random_gene_embedding(genes, k: int = 10, seed: int = 0) -> pd.DataFrame:
    """``G`` with i.i.d. N(0, 1) entries (the paper's "random G" control)."""
    rng = np.random.default_rng(seed)
    genes = pd.Index(genes)
    return pd.DataFrame(
        rng.normal(size=(len(genes), k)),
        index=genes,
        columns=[f"R{i + 1}" for i in range(k)],
    )


def perturbation_embedding_from_genes(
    table: pd.DataFrame, conditions
) -> tuple[pd.DataFrame, list[str]]:
    """``P`` from a table indexed by gene (a genes x d embedding, or another screen's
    conditions x d).

    ``A`` -> row ``A``; ``A+B`` -> row ``A`` + row ``B``; ``ctrl`` -> the table's
    ``ctrl`` row if it has one (a screen's embedding), else 0. Returns the embedding of
    the conditions that can be embedded and the list of those that cannot (a target gene
    without a row).
    """
    index = {str(g): i for i, g in enumerate(table.index)}
    values = table.to_numpy(dtype=float)
    rows, names, missing = [], [], []
    for condition in conditions:
        genes = condition_genes(condition)
        if not genes:
            rows.append(
                values[index[CONTROL]]
                if CONTROL in index
                else np.zeros(values.shape[1])
            )
        elif all(g in index for g in genes):
            rows.append(values[[index[g] for g in genes]].sum(axis=0))
        else:
            missing.append(condition)
            continue
        names.append(condition)
    embedded = pd.DataFrame(
        np.array(rows).reshape(len(names), values.shape[1]),
        index=pd.Index(names, name="condition"),
        columns=table.columns,
    )
    return embedded, missing


def random_perturbation_embedding(
    conditions, k: int = 10, seed: int = 0
) -> pd.DataFrame:
    """One i.i.d. N(0, 1) vector per condition, test conditions included (the paper's
    "random P")."""
    rng = np.random.default_rng(seed)
    conditions = list(conditions)
    return pd.DataFrame(
        rng.normal(size=(len(conditions), k)),
        index=pd.Index(conditions, name="condition"),
        columns=[f"R{i + 1}" for i in range(k)],
    )


def pca_perturbation_embedding(other_pb: Pseudobulk, k: int = 10) -> pd.DataFrame:
    """Perturbation embeddings learned on **another** screen: PCA scores of its
    pseudobulk (conditions x genes).

    Indexed by the other screen's condition names (matched to ours by target gene); its
    ``ctrl`` keeps its own score. Used for the paper's cross-dataset transfer (e.g. P
    from K562 for RPE1).

    ``other_pb``: the other screen's pseudobulk; ``k``: the number of components.
    """
    scores = pca_scores(other_pb.means.to_numpy(), k)
    return pd.DataFrame(
        scores,
        index=pd.Index(other_pb.conditions, name="condition"),
        columns=[f"PC{i + 1}" for i in range(scores.shape[1])],
    )


def align_gene_embedding(table: pd.DataFrame, genes) -> tuple[pd.DataFrame, list[str]]:
    """Rows of an external genes x d table for ``genes`` (matched by symbol) and the
    genes it lacks."""
    if not isinstance(table, pd.DataFrame) or table.shape[1] == 0:
        raise EmbeddingError(
            "A gene embedding must be a DataFrame with genes as rows and at "
            "least one column."
        )
    if table.index.has_duplicates:
        raise EmbeddingError(
            "The gene embedding has duplicated gene names, e.g. "
            f"{table.index[table.index.duplicated()][:5].tolist()}."
        )
    if not np.isfinite(table.to_numpy(dtype=float)).all():
        raise EmbeddingError("The gene embedding contains NaN or infinite values.")
    genes = pd.Index(genes)
    present = genes[genes.isin(table.index)]
    if len(present) == 0:
        raise EmbeddingError(
            f"None of the {len(genes)} genes has an embedding (table genes look "
            f"like {table.index[:3].tolist()}, data "
            f"genes like {genes[:3].tolist()}); align both on gene symbols."
        )
    return table.loc[present], genes[~genes.isin(table.index)].tolist()


@dataclass
class LinearFit:
    """A fitted linear model and what it could not use."""

    G: pd.DataFrame
    W: np.ndarray
    b: pd.Series
    ctrl: pd.Series
    P: (
        pd.DataFrame
    )  # embedding of every condition the model can predict or was trained on
    dataset: str
    method: str
    genes_without_embedding: list[str] = field(default_factory=list)
    train_without_embedding: list[str] = field(default_factory=list)

    def predict(
        self, conditions, *, seed: int | None = None
    ) -> tuple[Predictions, list[str]]:
        """Predictions for the conditions that have an embedding, and the list of those
        that do not."""
        conditions = list(conditions)
        ok = [c for c in conditions if c in self.P.index]
        unpredictable = [c for c in conditions if c not in self.P.index]
        change = (
            self.G.to_numpy() @ self.W @ self.P.loc[ok].to_numpy().T
        )  # genes x conditions
        values = (self.ctrl[self.G.index].to_numpy() + self.b[self.G.index].to_numpy())[
            :, None
        ] + change
        frame = pd.DataFrame(
            values.T, index=pd.Index(ok, name="condition"), columns=self.G.index
        )
        return Predictions(frame, self.method, self.dataset, seed), unpredictable


def fit_linear_model(
    train_pb: Pseudobulk,
    *,
    gene_embedding: pd.DataFrame | str = "pca",
    perturbation_embedding: pd.DataFrame | str = "genes",
    predict_conditions=(),
    k: int = 10,
    ridge: float = 0.1,
    seed: int = 0,
    method: str = "linear",
) -> LinearFit:
    """Fit ``Y ~ G W P^T + b`` on the training pseudobulk (see the module docstring).

    ``gene_embedding``: ``"pca"`` (training PCA), ``"random"``, or a genes x d table
    (aligned by symbol; genes without a row are dropped from the model and listed).
    ``perturbation_embedding``: ``"genes"`` (rows of G of the target genes),
    ``"random"`` (one random vector per condition), or a conditions x d table (e.g.
    :func:`pca_perturbation_embedding` of another screen; matched by condition name).
    ``predict_conditions`` are embedded too, so that :meth:`LinearFit.predict` can use
    them. Training conditions without an embedding are left out of the fit (listed).

    ``train_pb``: the training pseudobulks; ``k``: the dimension of the PCA embeddings;
    ``ridge``: the ridge penalty lambda; ``seed``: seeds the random embeddings;
    ``method``: the name of the predictions.
    """
    if CONTROL not in train_pb.conditions:
        raise InputError("The training pseudobulk needs the 'ctrl' row.")
    if isinstance(gene_embedding, str):
        if gene_embedding == "pca":
            G = pca_gene_embedding(train_pb, k)
        elif gene_embedding == "random":
            G = random_gene_embedding(train_pb.genes, k, seed)
        else:
            raise InputError(
                "gene_embedding must be 'pca', 'random' or a DataFrame, got "
                f"{gene_embedding!r}."
            )
        genes_missing: list[str] = []
    else:
        G, genes_missing = align_gene_embedding(gene_embedding, train_pb.genes)

    all_conditions = list(dict.fromkeys([*train_pb.conditions, *predict_conditions]))
    if isinstance(perturbation_embedding, str):
        if perturbation_embedding == "genes":
            # the paper's P always comes from the training PCA, also when G is random or
            # external
            source = (
                G
                if isinstance(gene_embedding, str) and gene_embedding == "pca"
                else pca_gene_embedding(train_pb, k)
            )
            P, _ = perturbation_embedding_from_genes(source, all_conditions)
        elif perturbation_embedding == "random":
            P = random_perturbation_embedding(all_conditions, k, seed + 1)
        else:
            raise InputError(
                "perturbation_embedding must be 'genes', 'random' or a "
                f"DataFrame, got {perturbation_embedding!r}."
            )
    else:
        table = perturbation_embedding
        if not np.isfinite(table.to_numpy(dtype=float)).all():
            raise EmbeddingError(
                "The perturbation embedding contains NaN or infinite values."
            )
        P, _ = perturbation_embedding_from_genes(table, all_conditions)

    train = [c for c in train_pb.conditions if c in P.index]
    train_missing = [c for c in train_pb.conditions if c not in P.index]
    if len(train) < 2:
        raise EmbeddingError(
            f"Only {len(train)} training condition(s) have a perturbation "
            "embedding; cannot fit."
        )
    ctrl = train_pb.ctrl
    Y = (
        (train_pb.means.loc[train, G.index] - ctrl[G.index]).to_numpy().T
    )  # genes x conditions
    b = Y.mean(axis=1)
    W = solve_two_sided_ridge(
        G.to_numpy(), Y - b[:, None], P.loc[train].to_numpy(), ridge
    )
    return LinearFit(
        G=G,
        W=W,
        b=pd.Series(b, index=G.index),
        ctrl=ctrl,
        P=P,
        dataset=train_pb.dataset,
        method=method,
        genes_without_embedding=genes_missing,
        train_without_embedding=train_missing,
    )


def linear_model(
    train_pb: Pseudobulk, conditions, *, seed: int | None = None, **kwargs
) -> Predictions:
    """Fit and predict in one call, with the signature of the baselines (for
    :func:`helpers.benchmark.run_methods`).

    Conditions that cannot be embedded are missing from the returned predictions;
    evaluate with ``allow_missing=True`` and compare methods on the common set.
    """
    conditions = list(conditions)
    fit = fit_linear_model(
        train_pb, predict_conditions=conditions, seed=seed or 0, **kwargs
    )
    predictions, _ = fit.predict(conditions, seed=seed)
    return predictions


def paper_variants(
    other_pb: Pseudobulk | None = None, *, k: int = 10, ridge: float = 0.1
) -> dict:
    """The linear-model variants of the paper's Fig. 2c that need no pretrained model,
    as benchmark methods.

    ``linear`` (G and P from the training PCA), ``linear_random_G``, ``linear_random_P``
    and, when the pseudobulk of another screen is given, ``linear_P_other_screen`` (P =
    PCA of that screen).

    ``other_pb``: the pseudobulk of another screen (or ``None``); ``k``, ``ridge``: as
    for :func:`fit_linear_model`.
    """
    variants = {
        "linear": partial(linear_model, k=k, ridge=ridge),
        "linear_random_G": partial(
            linear_model, gene_embedding="random", k=k, ridge=ridge
        ),
        "linear_random_P": partial(
            linear_model, perturbation_embedding="random", k=k, ridge=ridge
        ),
    }
    if other_pb is not None:
        variants["linear_P_other_screen"] = partial(
            linear_model,
            perturbation_embedding=pca_perturbation_embedding(other_pb, k),
            k=k,
            ridge=ridge,
        )
    return variants


def embedding_variants(
    tables: dict[str, pd.DataFrame],
    *,
    as_gene: bool = True,
    as_perturbation: bool = True,
    k: int = 10,
    ridge: float = 0.1,
) -> dict:
    """Linear-model methods that use pretrained genes x d tables as G
    (``linear_G_<name>``) and/or as the perturbation embedding (``linear_P_<name>``: a
    perturbation of gene g gets g's row, doubles the sum).

    With an external G, genes without a row are not predicted: evaluate with
    ``allow_missing_genes=True``.

    ``tables``: name -> genes x d table; ``as_gene``, ``as_perturbation``: which
    variants to make; ``k``, ``ridge``: as for :func:`fit_linear_model`.
    """
    methods = {}
    for name, table in tables.items():
        if as_gene:
            methods[f"linear_G_{name}"] = partial(
                linear_model, gene_embedding=table, k=k, ridge=ridge
            )
        if as_perturbation:
            methods[f"linear_P_{name}"] = partial(
                linear_model, perturbation_embedding=table, k=k, ridge=ridge
            )
    return methods


def random_embedding_like(table: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """A random Gaussian table of the same genes (rows) and dimension (columns) as
    ``table``.

    The control for "does this embedding carry knowledge, or only dimensions?": entries
    are i.i.d. normal with the root-mean-square entry of ``table`` (so the ridge penalty
    acts on the same scale). The row of gene ``g`` depends only on ``(seed, g,
    dimension)``, not on the other rows, so two tables that embed the same gene give it
    the same random row.
    """
    if not isinstance(table, pd.DataFrame) or table.shape[1] == 0 or len(table) == 0:
        raise EmbeddingError(
            "random_embedding_like needs a non-empty genes x d DataFrame."
        )
    values = table.to_numpy(dtype=float)
    if not np.isfinite(values).all():
        raise EmbeddingError(
            "The embedding contains NaN or infinite values; clean it first."
        )
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}.")
    d = table.shape[1]
    scale = float(np.sqrt(np.mean(values**2))) or 1.0
    rows = [
        np.random.default_rng([int(seed), zlib.crc32(str(g).encode()), d]).normal(
            size=d
        )
        for g in table.index
    ]
    out = pd.DataFrame(
        scale * np.array(rows),
        index=table.index.copy(),
        columns=[f"R{i + 1}" for i in range(d)],
    )
    out.attrs["provenance"] = f"random Gaussian control of dimension {d} (seed {seed})"
    return out


def random_control_name(side: str, dim: int) -> str:
    """``linear_P_random_d{dim}`` or ``linear_G_random_d{dim}``."""
    if side not in ("P", "G"):
        raise InputError(f"side must be 'P' or 'G', got {side!r}.")
    return f"linear_{side}_random_d{int(dim)}"


@dataclass
class RandomControls:
    """Random controls of matching dimension (:func:`random_control_variants`).

    ``methods``: control name -> {embedding seed: benchmark method}; ``pairs``:
    embedding method (``linear_P_text``) -> its control (``linear_P_random_d384``);
    ``seeds``: the embedding seeds.
    """

    methods: dict
    pairs: dict
    seeds: tuple


def random_control_variants(
    tables: dict[str, pd.DataFrame],
    *,
    seeds=(0, 1, 2, 3, 4),
    as_gene: bool = True,
    as_perturbation: bool = True,
    k: int = 10,
    ridge: float = 0.1,
) -> RandomControls:
    """For every table of :func:`embedding_variants`, the same linear model with a
    random Gaussian table of the same genes and dimension
    (:func:`random_embedding_like`), one per seed.

    Names: ``linear_P_random_d{dim}`` / ``linear_G_random_d{dim}``; a second table of an
    already used dimension gets ``_<table name>`` appended, so that every control
    matches the gene coverage of its own embedding.

    ``tables``: name -> genes x d table (as for :func:`embedding_variants`); ``seeds``:
    one control per seed; ``as_gene``, ``as_perturbation``, ``k``, ``ridge``: as for
    :func:`embedding_variants`.
    """
    seeds = tuple(seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise InputError(
            f"seeds must be a non-empty list of distinct integers, got {list(seeds)}."
        )
    if not isinstance(tables, dict) or not tables:
        raise InputError(
            "tables must be a non-empty dict: embedding name -> genes x d table."
        )
    sides = [s for s, on in (("G", as_gene), ("P", as_perturbation)) if on]
    methods, pairs, used = {}, {}, set()
    for name, table in tables.items():
        if not isinstance(table, pd.DataFrame) or table.shape[1] == 0:
            raise EmbeddingError(
                f"The table {name!r} must be a genes x d DataFrame with columns."
            )
        dim = table.shape[1]
        suffix = f"_{name}" if dim in used else ""
        used.add(dim)
        randoms = {s: random_embedding_like(table, s) for s in seeds}
        for side in sides:
            control = random_control_name(side, dim) + suffix
            key = "gene_embedding" if side == "G" else "perturbation_embedding"
            methods[control] = {
                s: partial(linear_model, **{key: randoms[s]}, k=k, ridge=ridge)
                for s in seeds
            }
            pairs[f"linear_{side}_{name}"] = control
    return RandomControls(methods=methods, pairs=pairs, seeds=seeds)
