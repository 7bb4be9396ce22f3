"""Gene annotations from an offline, real source: Bioconductor's org.Hs.eg.db (chapters
4 and 5).

The SQLite file inside Debian's ``r-bioc-org.hs.eg.db`` package (registry:
``org_hs_eg_db``) holds the human gene symbols, full names and GO annotations (Entrez
Gene 2022-09-12, GO 2022-07-01). It is read with Python's ``sqlite3``; no R is needed.
GEARS' own ``gene2go_all.pkl`` comes from another date, so GO graphs built from it
differ somewhat from the paper's.
"""

from __future__ import annotations

import sqlite3
from functools import lru_cache
from pathlib import Path

import pandas as pd

from . import data

__all__ = ["annotation_db", "gene2go", "gene_names", "ANNOTATION_SOURCE"]

ANNOTATION_SOURCE = (
    "Bioconductor org.Hs.eg.db 3.16.0 (Entrez Gene 2022-09-12, "
    "GO 2022-07-01), via Debian r-bioc-org.hs.eg.db"
)


def annotation_db(*, download: bool = True) -> Path:
    """Path of the org.Hs.eg.db SQLite file (fetched and extracted through the
    registry)."""
    return data.fetch("org_hs_eg_db", download=download, progressbar=False)


@lru_cache(maxsize=2)
def _gene2go_table(path: str) -> pd.DataFrame:
    query = """
        SELECT g.symbol AS gene, t.go_id AS go_id, t.ontology AS ontology
        FROM gene_info g
        JOIN (SELECT _id, go_id, 'BP' AS ontology FROM go_bp UNION ALL
              SELECT _id, go_id, 'MF' FROM go_mf UNION ALL
              SELECT _id, go_id, 'CC' FROM go_cc) t ON g._id = t._id
    """
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
        return pd.read_sql_query(query, con)


def gene2go(
    genes=None, *, ontologies=("BP", "MF", "CC"), download: bool = True
) -> dict[str, set[str]]:
    """Gene symbol -> set of GO term ids (the union of the ``ontologies``), like GEARS'
    ``gene2go_all.pkl``.

    Restricted to ``genes`` if given; genes without annotation are absent from the
    result.

    ``download``: fetch the annotation database when it is not cached (else an error
    says how to get it).
    """
    table = _gene2go_table(str(annotation_db(download=download)))
    table = table[table["ontology"].isin(ontologies)]
    if genes is not None:
        table = table[table["gene"].isin(set(genes))]
    return {gene: set(rows["go_id"]) for gene, rows in table.groupby("gene")}


def gene_names(genes=None, *, download: bool = True) -> pd.Series:
    """Full gene names indexed by symbol (e.g. CEBPA -> "CCAAT enhancer binding protein
    alpha")."""
    with sqlite3.connect(
        f"file:{annotation_db(download=download)}?mode=ro", uri=True
    ) as con:
        table = pd.read_sql_query("SELECT symbol, gene_name FROM gene_info", con)
    series = table.drop_duplicates("symbol").set_index("symbol")["gene_name"]
    return series if genes is None else series.reindex(list(genes)).dropna()
