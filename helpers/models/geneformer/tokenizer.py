"""Geneformer's rank value encoding and in-silico perturbation, written by the book.

Re-implements what Geneformer (ctheodoris/Geneformer, the version of January 2025
that the paper's ``run_geneformer.py`` ran: ``tokenizer.py``, ``perturber_utils.py``,
``in_silico_perturber.py``) does to a cell; ``tests/parity/test_geneformer_parity.py``
compares every function here, integer for integer, with the real code.

Rank value encoding of one cell with raw counts :math:`c_g` and total count :math:`n`
(all genes of the cell, the ``n_counts`` column Geneformer asks for):

.. math:: v_g = \\frac{c_g}{n} \\cdot 10^4 / m_g

with :math:`m_g` the gene's non-zero median (the gene median dictionary); the genes of
the vocabulary with :math:`v_g > 0` are sorted by decreasing :math:`v_g`
(``np.argsort(-v)``, as Geneformer) and replaced by their token ids; the list is cut to
``model_input_size - 2`` and framed by ``<cls>`` and ``<eos>`` (the 95M models).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from ...errors import InputError

__all__ = [
    "TARGET_SUM",
    "SPECIAL_TOKENS",
    "gene_medians",
    "rank_value_tokens",
    "overexpress",
    "delete",
    "select_cells",
]

TARGET_SUM = 10_000
SPECIAL_TOKENS = ("<pad>", "<mask>", "<cls>", "<eos>")  # ids 0..3, as gc95M


def _csr(counts) -> sp.csr_matrix:
    out = sp.csr_matrix(counts, dtype=np.float64)
    out.sort_indices()
    return out


def gene_medians(counts, genes: Sequence[str]) -> dict[str, float]:
    """Each gene's median over the cells that detect it of ``c / n * 10^4``.

    ``counts``: cells x genes raw counts (dense or sparse); ``genes``: the column
    names. As Geneformer's gene median dictionary ("non-zero median value of
    expression"); genes no cell detects are left out.
    """
    x = _csr(counts)
    n = np.asarray(x.sum(axis=1)).ravel()
    if np.any(n <= 0):
        raise InputError(
            "a cell has no counts; drop empty cells before computing gene medians"
        )
    norm = sp.csr_matrix(sp.diags(TARGET_SUM / n) @ x).tocsc()
    out: dict[str, float] = {}
    for j, gene in enumerate(genes):
        col = norm.data[norm.indptr[j] : norm.indptr[j + 1]]
        col = col[col > 0]
        if col.size:
            out[str(gene)] = float(np.median(col))
    return out


def rank_value_tokens(
    counts,
    genes: Sequence[str],
    token_dict: dict,
    *,
    median_dict: dict,
    n_counts=None,
    model_input_size: int = 4096,
    special_token: bool = True,
) -> list[np.ndarray]:
    """Token ids of each cell (Geneformer's ``TranscriptomeTokenizer``, h5ad path).

    ``counts``: cells x genes raw counts; ``genes``: the column ids (the keys of
    ``token_dict``; Ensembl ids for the released model); ``token_dict``: id -> token;
    ``median_dict``: id -> non-zero median; ``n_counts``: each cell's total count
    (default: the row sums of ``counts``); ``model_input_size``: the model's number of
    positions; ``special_token``: frame with ``<cls>``/``<eos>`` (95M models).
    Columns whose id is not in ``token_dict`` are ignored.
    """
    x = _csr(counts)
    genes = [str(g) for g in genes]
    if x.shape[1] != len(genes):
        raise InputError(
            f"counts have {x.shape[1]} columns but {len(genes)} gene ids were given; "
            "pass one id per column"
        )
    loc = np.array([i for i, g in enumerate(genes) if g in token_dict], dtype=int)
    missing = [genes[i] for i in loc if genes[i] not in median_dict]
    if missing:
        raise InputError(
            f"{len(missing)} vocabulary genes have no median (e.g. {missing[0]}); "
            "use the gene median dictionary that belongs to the token dictionary"
        )
    norm_factor = np.array([median_dict[genes[i]] for i in loc], dtype=np.float64)
    tokens = np.array([token_dict[genes[i]] for i in loc], dtype=np.int64)
    if n_counts is None:
        n_counts = np.asarray(x.sum(axis=1)).ravel()
    n_counts = np.asarray(n_counts, dtype=np.float64).ravel()
    if special_token and not {"<cls>", "<eos>"} <= set(token_dict):
        raise InputError(
            "special_token=True needs <cls> and <eos> in the token dictionary; "
            "use a 95M dictionary or special_token=False"
        )
    sub = x[:, loc].tocsr()
    sub.sort_indices()
    out = []
    for i in range(sub.shape[0]):
        lo, hi = sub.indptr[i], sub.indptr[i + 1]
        cols = sub.indices[lo:hi]
        # the same operations in the same order as Geneformer: x / n * 1e4 / m
        v = sub.data[lo:hi] / n_counts[i] * TARGET_SUM / norm_factor[cols]
        keep = v != 0
        ranked = tokens[cols[keep]][np.argsort(-v[keep])]
        if special_token:
            ranked = np.concatenate(
                [
                    [token_dict["<cls>"]],
                    ranked[: model_input_size - 2],
                    [token_dict["<eos>"]],
                ]
            ).astype(np.int64)
        else:
            ranked = ranked[:model_input_size]
        out.append(ranked)
    return out


def _perturb_index(ids: list[int], tokens: Sequence[int]) -> list[int]:
    found = [ids.index(t) for t in tokens if t in ids]
    # Geneformer marks "none of the targets is in the cell" with [-100]
    return found if found else [-100]


def delete(ids: Sequence[int], tokens: Sequence[int]) -> list[int]:
    """Geneformer's in-silico deletion of ``tokens`` from one cell's ``ids``.

    ``ids``: the cell's token ids; ``tokens``: the target tokens. As
    ``perturber_utils.delete_indices`` with the paper's ``make_group_perturbation_
    batch``: the targets' positions are removed; where NO target is in the cell,
    Geneformer's marker index -100 is deleted like a position, i.e. the 100th token
    from the end goes (a quirk of the real code, kept for parity; a cell shorter than
    100 tokens then fails there as well).
    """
    ids = [int(t) for t in ids]
    for index in sorted(_perturb_index(ids, tokens), reverse=True):
        if index == -100 and len(ids) < 100:
            raise InputError(
                "Geneformer's delete of a gene absent from a cell removes the 100th "
                "token from the end, but the cell has fewer than 100 tokens; use "
                "longer sentences (model_input_size) or perturb_type='overexpress'"
            )
        del ids[index]
    return ids


def overexpress(
    ids: Sequence[int],
    tokens: Sequence[int],
    max_len: int,
    *,
    special_token: bool = True,
) -> list[int]:
    """Geneformer's in-silico overexpression of ``tokens`` in one cell's ``ids``.

    ``ids``: the cell's token ids; ``tokens``: the target tokens in order;
    ``max_len``: the model's number of positions; ``special_token``: ``<cls>`` first
    and ``<eos>`` last. As ``perturber_utils.overexpress_tokens``: the targets present
    are removed, all targets are put at the front (after ``<cls>``) in their order, and
    the sentence is cut to ``max_len`` keeping its last token.
    """
    ids = [int(t) for t in ids]
    index = _perturb_index(ids, tokens)
    if index != [-100]:
        for i in sorted(index, reverse=True):
            del ids[i]
    front = 1 if special_token else 0
    ids[front:front] = [int(t) for t in tokens]
    if len(ids) > max_len:
        ids = ids[: max_len - 1] + [ids[-1]] if special_token else ids[:max_len]
    return ids


def select_cells(lengths: Sequence[int], max_ncells: int | None) -> np.ndarray:
    """Which cells Geneformer's ``InSilicoPerturber`` perturbs, in its order.

    ``lengths``: each tokenised cell's length; ``max_ncells``: the cap (150 in the
    paper). As ``perturber_utils.downsample_and_sort``: above the cap the cells are
    shuffled as ``datasets`` does with seed 42 (``np.random.default_rng(42)
    .permutation``) and the first ``max_ncells`` kept; then sorted by length,
    longest first, ties in their current order (a stable sort).
    """
    lengths = np.asarray(lengths)
    order = np.arange(lengths.size)
    if max_ncells is not None and lengths.size > max_ncells:
        order = np.random.default_rng(42).permutation(lengths.size)[:max_ncells]
    return order[np.argsort(-lengths[order], kind="stable")]
