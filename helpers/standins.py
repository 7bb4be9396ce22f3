"""Stand-in files in the exact layouts of the paper's real data files, at any scale.

The real files (figshare 44477939, GEARS' Harvard Dataverse zips, GEARS' gene lists)
cannot be downloaded where the book is built and tested. These writers produce files
that have the same *container and layout* as the real ones, so that the registry, the
seeding, the loaders and every chapter's ``profile="paper"`` code path meet what a
reader will download. The **expression values are random** (a Poisson model with planted
effects): nothing numeric computed from a stand-in means anything, and every stand-in
file says ``SYNTHETIC STAND-IN`` in ``uns``.

Public API (stable; also used by ``benchmarks/bench_paper_profile.py`` and the tests):

* :func:`write_standins` ``(folder, scale="small" | "full", datasets=..., seed=0)``
  writes every file under its registry file name, ready for ``python -m helpers.data
  seed <folder>``; returns ``{registry name: path}``.
* :func:`write_scfoundation_norman_zip` ``(path, n_cells=, n_genes=,
  conditions=, ...)``: the zip of figshare file 44477939 with its member
  :data:`SCFOUNDATION_MEMBER`.
* :func:`write_gears_zip` ``(path, dataset, n_cells=, n_genes=, conditions=, ...)``: a
  GEARS Dataverse zip (``norman`` / ``adamson`` / ``replogle_k562_essential`` /
  ``replogle_rpe1_essential``).
* :func:`write_go_gene_list` / :func:`write_gene2go`: GEARS'
  ``essential_all_data_pert_genes.pkl`` and ``gene2go_all.pkl`` in their pickled types.
* :func:`write_scgpt_checkpoint` ``(folder, genes, ...)``: a ``scGPT_human/`` folder
  (``vocab.json``, ``args.json``, ``best_model.pt``) in the released layout, full size
  by default (60,697 tokens, d = 512, 12 layers; random weights), for chapter 5's paper
  profile.
* :func:`norman_conditions`, :func:`single_conditions`: condition labels in GEARS
  spelling (the real names wherever the paper published them).
* :data:`SCALES`: the ``small`` (tests) and ``full`` (real sizes) settings per dataset.

Which layout fact comes from which source (``[S1]`` ... are cited at each fact below):

* **[S1]** the paper's ``benchmark/src/prepare_perturbation_data.py``
  (const-ae/linear_perturbation_prediction-Paper, FINAL f5b6679): figshare 44477939 is
  saved as ``norman_from_scfoundation_data.zip`` and the member
  ``scFoundation/GEARS/data/gse133344_k562gi_oe_pert227_84986_19264_withtotalcount.h5ad``
  is read from it; ``uns['log1p']`` is set by the paper (so the file has none);
  ``PertData.new_data_process`` is run on it (requires obs ``condition``, ``cell_type``,
  var ``gene_name``).
* **[S2]** scFoundation's GEARS fork (biomap-research/scFoundation
  ``GEARS/gears/pertdata.py``, ``create_cell_graph_dataset``): reads
  ``obs['total_count']`` of control cells.
* **[S3]** GEARS v0.1.2 ``gears/pertdata.py`` (``PertData.load``): Dataverse ids 6154020
  (norman), 6154417 (adamson), 7458695 (replogle_k562_essential), 7458694
  (replogle_rpe1_essential); the zip is unpacked into ``<data_path>/<name>/`` and
  ``<name>/perturb_processed.h5ad`` is read; ``set_pert_genes``: GO genes =
  ``essential_all_data_pert_genes.pkl`` (Dataverse 6934320), a pickled iterable of
  symbols, intersected with the keys of ``gene2go_all.pkl`` (Dataverse 6153417, a
  pickled dict symbol -> GO ids); ``filter_pert_in_go`` keeps ``ctrl`` and conditions
  whose two ``+`` parts are each ``ctrl`` or a GO gene.
* **[S4]** GEARS ``gears/data_utils.py``: ``get_DE_genes`` sets ``dose_val`` = ``'1+1'``
  for labels with two ``+`` parts (so also ``A+ctrl``) else ``'1'``; ``control`` = 0 for
  two parts else 1; ``condition_name`` = ``<cell_type>_<condition>_<dose_val>``;
  ``rank_genes_groups_cov_all`` = ``{condition_name: var ids ranked}`` with ``n_genes =
  n_vars`` and the control group ``<cell_type>_ctrl_1`` as reference (so not a key);
  ``get_dropout_non_zero_genes`` adds ``top_non_dropout_de_20`` / ``top_non_zero_de_20``
  (arrays of 20 var ids) and ``non_zeros_gene_idx`` / ``non_dropout_gene_idx`` (sorted
  int index arrays), keyed by condition_name; var ids are the var index.
* **[S5]** issue #13 (the project's record of the real files): X sparse CSR; GEARS var
  index = Ensembl ids with symbols in ``var['gene_name']``; ``obs['cell_type']`` is a
  dummy ``A549`` in GEARS Norman; ``layers['counts']`` in GEARS Norman; the scFoundation
  file is 84,986 x 19,264 with obs ``condition``, ``cell_type``, ``total_count`` and var
  ``gene_name``; GEARS Norman 91,205 x 5,045; Replogle keeps 5,000 HVGs so most targets
  are not in ``var``; the GO filter removes ``IER5L+ctrl`` and ``LYL1+IER5L`` from
  Norman; Adamson / K562 / RPE1 keep 81 / 1,087 / 1,534 singles.
* **[S6]** the paper's dataset table (``/work/shared/design/method_spec.md`` section
  1.1): cells after the GO filter - Adamson 65,899 x 5,060, K562 162,264 x 5,000, RPE1
  161,423 x 5,000; GEARS' preprocessing (GEARS_misc notebooks): normalize_total (median
  target) + natural log1p; control ``ctrl``; singles ``GENE+ctrl``; doubles ``A+B``.
* **[S8]** ``/work/shared/design/foundation_models.md`` sections 3.1 and 3.3 (read from
  scGPT 0.2.1 and master): the ``scGPT_human/`` folder holds ``vocab.json`` (symbol ->
  id, ``<pad>``, ``<cls>``, ``<eoc>`` included; 60,694 + 3 = 60,697 tokens),
  ``args.json`` (the census run: embsize 512, d_hid 512, nlayers 12, nheads 8,
  n_layers_cls 3, ...) and ``best_model.pt`` (a plain state dict: encoder, value
  encoder, flash-attention ``self_attn.Wqkv`` names, ``decoder.fc.{0,2,4}``,
  ``cls_decoder``, ``mvc_decoder``; no perturbation encoder).
* **[S7]** the paper's published per-perturbation tables (``helpers.published``; Source
  Data Fig. 1 and 2): the real names of Norman's 122 held-out doubles and of the
  held-out / evaluated single perturbations.

Not verifiable offline (chosen here and marked as such): the scFoundation file's var
index (symbols here), its ``cell_type`` value (``K562`` here), its normalisation; the
sparsity of any real file; the real names of the Norman conditions the paper never
published (32 singles, 2 doubles: named ``SYN...`` here); the fraction of Replogle
targets among the 5,000 HVGs (0.37 K562 / 0.41 RPE1 here, the paper's share of
conditions usable by the linear model, method_spec section 4.1 / 7.3); the number of
single perturbations GEARS' GO filter removes from Adamson / Replogle
(``n_outside_go``).
"""

from __future__ import annotations

import functools
import os
import pickle
import zipfile
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from . import data
from .errors import InputError

__all__ = [
    "SCFOUNDATION_MEMBER",
    "GEARS_MEMBERS",
    "GEARS_NAMES",
    "NOT_IN_GO",
    "SCALES",
    "STANDIN_NOTE",
    "norman_conditions",
    "single_conditions",
    "go_genes_for",
    "write_scfoundation_norman_zip",
    "write_gears_zip",
    "write_gears_h5ad",
    "write_go_gene_list",
    "write_gene2go",
    "write_standins",
    "write_scgpt_checkpoint",
    "SCGPT_HUMAN_ARGS",
]

#: [S1] member of the figshare zip that the paper reads.
SCFOUNDATION_MEMBER = data.checkout_entry("norman2019").member  # registry: member
#: registry name -> GEARS' dataset name (the folder inside its zip) [S3]: a view of the
#: registry's ``member`` of every ``layout = "gears"`` entry.
GEARS_NAMES = {
    name: e.member.split("/", 1)[0]
    for name, e in data.load_registry().items()
    if e.layout == "gears" and e.member
}
#: [S3] member of each GEARS zip that GEARS reads.
GEARS_MEMBERS = {
    reg: f"{name}/perturb_processed.h5ad" for reg, name in GEARS_NAMES.items()
}
#: [S5] the Norman genes outside GEARS' GO gene list (IER5L+ctrl and LYL1+IER5L are
#: dropped).
NOT_IN_GO = ("IER5L",)
STANDIN_NOTE = (
    "SYNTHETIC STAND-IN written by helpers.standins: real layout, random values"
)

# cell type (obs['cell_type'] of the real file: [S5] dummy A549 in GEARS Norman; the
# others are not verified offline), modality, sizes and the share of targets among the
# genes: the registry's file_cell_type, modality, standin_full / standin_small,
# standin_targets_in_var.


def _entry(dataset: str):
    return data.get_entry(dataset)


def _scales() -> dict[str, dict[str, dict]]:
    """``{scale: {registry name: sizes}}`` of every entry with stand-in sizes."""
    registry = data.load_registry()
    return {
        scale: {
            name: dict(e.standin(scale))
            for name, e in registry.items()
            if e.standin(scale) is not None
        }
        for scale in ("full", "small")
    }


#: Sizes per dataset and scale. ``full`` = the real files' sizes ([S5], [S6]);
#: ``small`` = tests. n_singles / n_doubles count conditions *before* GEARS' GO filter.
#: A view of the registry (``standin_full`` / ``standin_small``; the small sizes hold
#: every single perturbation the paper published, 51 / 360 / 504 names, + 1 outside GO).
SCALES = _scales()
# [S6] Norman and Adamson keep the perturbed genes next to the 5,000 HVGs; Replogle does
# not.


# --------------------------------------------------------------------------------------
# condition names


@functools.lru_cache(maxsize=None)
def _published_doubles() -> list[str]:
    from . import published

    return tuple(
        sorted(published.double_metrics()["condition"].unique())
    )  # [S7] 122 real doubles


@functools.lru_cache(maxsize=None)
def _published_single_table() -> pd.DataFrame:
    from . import published

    both = [published.single_metrics(panel=p, held_out_only=False) for p in ("A", "C")]
    return pd.concat([t[["dataset", "condition"]] for t in both]).drop_duplicates()


def _published_singles(dataset: str) -> list[str]:
    table = _published_single_table()
    names = set(table.loc[table["dataset"] == dataset, "condition"])
    return sorted(n for n in names if "+" not in n and n != "ctrl")  # [S7]


def norman_conditions(
    n_singles: int = 101, n_doubles: int = 125, *, seed: int = 0
) -> list[str]:
    """Norman condition labels in GEARS spelling (``ctrl``, ``A+ctrl`` / ``ctrl+A``,
    ``A+B``), before the GO filter.

    The real names where the paper published them ([S7]: 122 doubles and their 68 genes)
    plus ``IER5L+ctrl`` and ``LYL1+IER5L`` ([S5], the two conditions GEARS' GO filter
    removes); the rest (to reach ``n_singles`` / ``n_doubles``; real: 101 and 125 before
    the filter) are ``SYN...`` names. Every fifth single is spelled ``ctrl+A``, as some
    are in the GEARS files ([S5]).
    """
    doubles = [*_published_doubles(), "LYL1+IER5L"]  # [S7] + [S5]
    genes = sorted({g for d in doubles for g in d.split("+")})
    n_fill = max(0, n_singles - len(genes))
    genes += [f"SYNS{i:03d}" for i in range(n_fill)]
    rng = np.random.default_rng(seed)
    extra = max(0, n_doubles - len(doubles))
    pool = genes[len(genes) - n_fill :] if n_fill >= 2 else genes
    seen = set(doubles)
    while extra > 0:
        a, b = rng.choice(pool, 2, replace=False)
        if f"{a}+{b}" not in seen and f"{b}+{a}" not in seen:
            doubles.append(f"{a}+{b}")
            seen.add(f"{a}+{b}")
            extra -= 1
    singles = [
        f"ctrl+{g}" if i % 5 == 4 else f"{g}+ctrl"
        for i, g in enumerate(sorted(genes)[:n_singles])
    ]
    return ["ctrl", *singles, *doubles[:n_doubles]]


def single_conditions(
    dataset: str, n_singles: int, *, n_outside_go: int = 1
) -> list[str]:
    """Single-perturbation labels (``ctrl`` + ``GENE+ctrl``) of a GEARS screen, before
    the GO filter.

    Real names where the paper published them ([S7]), then ``SYN...`` names. The last
    ``n_outside_go`` targets are named ``NOGO<i>`` and left out of the stand-in GO gene
    list, so that GEARS' GO filter has something to remove (how many it removes from the
    real files is not known offline; after it, the real files keep 81 / 1,087 / 1,534
    singles [S5]).
    """
    real = _published_singles(dataset)
    keep = n_singles - n_outside_go
    genes = real[:keep] + [
        f"SYN{dataset[:3].upper()}{i:04d}" for i in range(max(0, keep - len(real)))
    ]
    genes += [f"NOGO{i}" for i in range(n_outside_go)]
    return ["ctrl", *[f"{g}+ctrl" for g in genes]]


def _targets(conditions) -> list[str]:
    return sorted({g for c in conditions for g in str(c).split("+") if g != "ctrl"})


def go_genes_for(conditions, *, exclude=NOT_IN_GO) -> list[str]:
    """A stand-in GO gene list: every target of ``conditions`` except ``exclude`` and
    ``NOGO*`` names."""
    return [
        g
        for g in _targets(conditions)
        if g not in set(exclude) and not g.startswith("NOGO")
    ]


# --------------------------------------------------------------------------------------
# expression model (random; only the layout is real)


class _Expression:
    """Poisson counts around per-gene means with a planted effect per perturbed gene
    (and for some doubles)."""

    def __init__(self, rng, genes, conditions, modality, *, n_effect_genes=25):
        n = len(genes)
        # per-gene log means: ~17% non-zero entries and ~6,000 counts per cell over
        # 19,264 genes (a plausible 10x K562 profile; the real files' sparsity is not
        # known offline)
        self.log_mu = rng.normal(-2.5, 1.6, n)
        self.log_mu[: min(n, 50)] += 3.0  # a few highly expressed genes
        index = {g: i for i, g in enumerate(genes)}
        own = 2.0 if modality == "CRISPRa" else -1.5
        single_effect = {}
        for target in _targets(conditions):
            eff = np.zeros(n)
            cols = rng.choice(n, min(n_effect_genes, n), replace=False)
            eff[cols] = rng.normal(0, 0.6, len(cols))
            if target in index:
                eff[index[target]] += own
            single_effect[target] = eff
        self.effects = np.zeros((len(conditions), n))
        for k, cond in enumerate(conditions):
            parts = [p for p in str(cond).split("+") if p != "ctrl"]
            for p in parts:
                self.effects[k] += single_effect[p]
            if (
                len(parts) == 2
            ):  # a non-additive part on a few genes (buffering or synergy)
                cols = rng.choice(n, min(10, n), replace=False)
                self.effects[k, cols] *= rng.choice([0.3, 1.8], len(cols))

    def counts(self, rng, codes):
        lam = np.exp(self.log_mu[None, :] + self.effects[codes])
        lam *= rng.lognormal(0.0, 0.3, (len(codes), 1))  # library-size variation
        return rng.poisson(lam).astype(np.float32)


def _cell_codes(
    rng, n_cells: int, n_conditions: int, ctrl_fraction: float
) -> np.ndarray:
    n_ctrl = max(2, int(round(n_cells * ctrl_fraction)))
    rest = n_cells - n_ctrl
    if rest < 2 * (n_conditions - 1):
        raise InputError(
            f"{n_cells} cells are too few for {n_conditions} conditions (need >= 2 per "
            "condition): give more cells or fewer conditions."
        )
    codes = np.concatenate(
        [
            np.zeros(n_ctrl, dtype=np.int64),
            np.repeat(np.arange(1, n_conditions), 2),
            rng.integers(1, n_conditions, rest - 2 * (n_conditions - 1)),
        ]
    )
    return rng.permutation(codes)


def _ensembl_ids(n: int) -> list[str]:
    # Ensembl-shaped ids (ENSG + 11 digits) in a range that no real human gene uses.
    return [f"ENSG9{i:010d}" for i in range(n)]


# Real human gene symbols measured in K562 / RPE1 data (erythroid, myeloid, housekeeping
# genes), put first among the non-target genes so that chapters that look up known genes
# (e.g. chapter 5's probes CEBPA / CEBPB / KLF1 / MAPK1 / SGK1) find them; the rest of
# var is ``SYNG...``.
_KNOWN_GENES = (
    "CEBPA",
    "CEBPB",
    "CEBPE",
    "KLF1",
    "MAPK1",
    "SGK1",
    "GATA1",
    "TAL1",
    "HBG1",
    "HBG2",
    "HBZ",
    "HBA1",
    "HBE1",
    "GYPA",
    "TFRC",
    "MYC",
    "SPI1",
    "RUNX1",
    "GAPDH",
    "ACTB",
    "TMSB4X",
    "B2M",
    "EEF1A1",
    "RPL13",
    "RPS18",
    "MKI67",
    "TOP2A",
    "PCNA",
    "CDK1",
    "CCNB1",
    "NPM1",
    "HSPA5",
    "XBP1",
    "ATF4",
    "DDIT3",
    "JUN",
    "FOS",
    "EGR1",
    "VIM",
    "LMO2",
)


def _gene_symbols(targets_in_var: list[str], n_genes: int, exclude=()) -> list[str]:
    """``targets_in_var``, then known real symbols that are not targets (``exclude``),
    then ``SYNG...``."""
    fill = n_genes - len(targets_in_var)
    if fill < 0:
        raise InputError(
            f"n_genes={n_genes} is smaller than the {len(targets_in_var)} targets kept "
            "in var: give more genes."
        )
    known = [g for g in _KNOWN_GENES if g not in set(targets_in_var) | set(exclude)][
        :fill
    ]
    return [
        *targets_in_var,
        *known,
        *[f"SYNG{i:05d}" for i in range(fill - len(known))],
    ]


def _normalise(counts: np.ndarray, target_sum) -> np.ndarray:
    totals = np.maximum(counts.sum(1, keepdims=True), 1.0)
    return np.log1p(counts / totals * target_sum).astype(np.float32)


def _stream_matrix(
    h5, key, rng, model, codes, *, chunk_rows, target_sum, counts_key=None
):
    """Append X (and optionally raw counts) to an open h5ad file in row chunks; return
    per-cell totals."""
    from .loaders import SparseRowWriter

    totals = np.zeros(len(codes), dtype=np.float64)
    X = SparseRowWriter(h5, key)
    C = SparseRowWriter(h5, counts_key) if counts_key is not None else None
    for start in range(0, len(codes), chunk_rows):
        stop = min(start + chunk_rows, len(codes))
        counts = model.counts(rng, codes[start:stop])
        totals[start:stop] = counts.sum(1)
        X.append(sp.csr_matrix(_normalise(counts, target_sum)))
        if C is not None:
            C.append(sp.csr_matrix(counts))
    return totals


def _write_h5ad(
    path: Path,
    obs,
    var,
    uns,
    rng,
    model,
    codes,
    *,
    chunk_rows,
    target_sum,
    counts_layer,
):
    """obs/var/uns through anndata; X (and layers['counts']) streamed as CSR float32."""
    import h5py

    empty = sp.csr_matrix((len(obs), len(var)), dtype=np.float32)
    adata = ad.AnnData(X=empty, obs=obs, var=var, uns=uns)
    if counts_layer:
        adata.layers["counts"] = empty.copy()
    adata.write_h5ad(path)
    del adata
    with h5py.File(path, "a") as h5:
        totals = _stream_matrix(
            h5,
            "X",
            rng,
            model,
            codes,
            chunk_rows=chunk_rows,
            target_sum=target_sum,
            counts_key="layers/counts" if counts_layer else None,
        )
    return totals


def _zip_member(
    zip_path: Path,
    member_file: Path,
    member: str,
    extra: dict[str, bytes] | None = None,
    compression=zipfile.ZIP_DEFLATED,
    compresslevel: int = 1,
) -> None:
    tmp = zip_path.with_name(zip_path.name + ".part")
    try:
        with zipfile.ZipFile(
            tmp,
            "w",
            compression=compression,
            compresslevel=compresslevel,
            allowZip64=True,
        ) as zf:
            zf.write(member_file, member)
            for name, payload in (extra or {}).items():
                zf.writestr(name, payload)
        os.replace(tmp, zip_path)
    finally:
        tmp.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------
# writers


def write_scfoundation_norman_zip(
    path: str | os.PathLike,
    *,
    n_cells: int = 2_400,
    n_genes: int = 600,
    conditions: list[str] | None = None,
    seed: int = 0,
    chunk_rows: int = 2_000,
    ctrl_fraction: float = 0.1,
    compresslevel: int = 1,
) -> Path:
    """Write the figshare 44477939 stand-in: a zip holding :data:`SCFOUNDATION_MEMBER`
    ([S1]).

    Member layout ([S1], [S2], [S5]): X CSR float32 = log1p(counts / total * 1e4) (the
    real normalisation is unverified); obs ``condition`` (GEARS spelling),
    ``cell_type``, ``total_count``; var index = symbols (unverified) with
    ``var['gene_name']``; no ``uns['log1p']`` (the paper adds it). All targets are among
    the genes (19,264 genes in the real file). Rows are written in chunks of
    ``chunk_rows``, so the full 84,986 x 19,264 file needs little memory.
    """
    path = Path(path)
    conditions = list(conditions) if conditions is not None else norman_conditions()
    rng = np.random.default_rng(seed)
    genes = _gene_symbols(_targets(conditions), n_genes)
    codes = _cell_codes(rng, n_cells, len(conditions), ctrl_fraction)
    model = _Expression(rng, genes, conditions, "CRISPRa")
    obs = pd.DataFrame(
        {
            "condition": pd.Categorical(
                np.asarray(conditions, dtype=object)[codes], categories=conditions
            ),
            "cell_type": pd.Categorical(
                [_entry("norman2019").file_cell_type] * n_cells
            ),
        },
        index=pd.Index([f"cell{i:06d}-1" for i in range(n_cells)]),
    )
    obs["total_count"] = np.zeros(n_cells, dtype=np.float32)
    var = pd.DataFrame({"gene_name": genes}, index=pd.Index(genes))
    uns = {"standin": STANDIN_NOTE}
    path.parent.mkdir(parents=True, exist_ok=True)
    member_file = path.with_name(path.name + ".member.h5ad")
    try:
        totals = _write_h5ad(
            member_file,
            obs,
            var,
            uns,
            rng,
            model,
            codes,
            chunk_rows=chunk_rows,
            target_sum=1e4,
            counts_layer=False,
        )
        _set_obs_column(member_file, "total_count", totals.astype(np.float32))
        _zip_member(path, member_file, SCFOUNDATION_MEMBER, compresslevel=compresslevel)
    finally:
        member_file.unlink(missing_ok=True)
    return path


def _set_obs_column(path: Path, column: str, values: np.ndarray) -> None:
    import h5py

    with h5py.File(path, "a") as h5:
        h5["obs"][column][...] = values


def _de_dicts(rng, obs_names: list[str], var_ids: np.ndarray, n_ranked: int | None):
    """uns DE dictionaries in GEARS' key formats ([S4]); gene rankings are random."""
    n = len(var_ids)
    n_ranked = n if n_ranked is None else min(n_ranked, n)
    rank, top_nd, top_nz, nz_idx, nd_idx = {}, {}, {}, {}, {}
    for name in obs_names:
        order = rng.permutation(n)[:n_ranked]
        rank[name] = var_ids[order]
        top_nd[name] = var_ids[order[:20]]
        top_nz[name] = var_ids[order[:20]]
        nz = np.sort(rng.choice(n, int(0.8 * n), replace=False))
        nz_idx[name] = nz
        nd_idx[name] = nz
    return {
        "rank_genes_groups_cov_all": rank,
        "top_non_dropout_de_20": top_nd,
        "top_non_zero_de_20": top_nz,
        "non_zeros_gene_idx": nz_idx,
        "non_dropout_gene_idx": nd_idx,
    }


def write_gears_h5ad(
    path: str | os.PathLike,
    dataset: str,
    *,
    n_cells: int,
    n_genes: int,
    conditions: list[str],
    seed: int = 0,
    chunk_rows: int = 2_000,
    ctrl_fraction: float = 0.08,
    targets_in_var: float | None = None,
    n_ranked: int | None = None,
) -> Path:
    """Write ``perturb_processed.h5ad`` in GEARS' layout ([S3], [S4], [S5], [S6]).

    X CSR float32 = log1p(normalize_total to the median total) [S6]; var index =
    Ensembl-shaped ids, symbols in ``var['gene_name']`` [S5]; obs ``condition``,
    ``cell_type``, ``dose_val``, ``control``, ``condition_name`` [S4]; uns DE dicts [S4]
    (``n_ranked`` genes per condition; real: all); ``layers['counts']`` only for GEARS
    Norman [S5]. ``targets_in_var``: share of targets among the genes (Replogle keeps
    5,000 HVGs, so most targets are missing [S5]; default per dataset).
    """
    path = Path(path)
    rng = np.random.default_rng(seed)
    targets = _targets(conditions)
    entry = _entry(dataset)
    default_share = entry.standin_targets_in_var
    share = (
        targets_in_var
        if targets_in_var is not None
        else (1.0 if default_share is None else default_share)
    )
    kept = (
        sorted(rng.choice(targets, int(round(share * len(targets))), replace=False))
        if share < 1
        else targets
    )
    symbols = _gene_symbols(list(kept), n_genes, exclude=targets)
    symbols = list(
        np.asarray(symbols)[rng.permutation(len(symbols))]
    )  # targets anywhere in var
    var_ids = np.asarray(_ensembl_ids(n_genes), dtype=object)
    codes = _cell_codes(rng, n_cells, len(conditions), ctrl_fraction)
    model = _Expression(rng, symbols, conditions, entry.modality)
    cell_type = entry.file_cell_type
    labels = np.asarray(conditions, dtype=object)[codes]
    dose = {c: "1+1" if len(c.split("+")) == 2 else "1" for c in conditions}  # [S4]
    obs = pd.DataFrame(
        {
            "condition": pd.Categorical(labels, categories=conditions),
            "cell_type": pd.Categorical([cell_type] * n_cells),
            "dose_val": pd.Categorical([dose[c] for c in labels]),
            "control": np.array(
                [0 if len(c.split("+")) == 2 else 1 for c in labels], dtype=np.int64
            ),
            "condition_name": pd.Categorical(
                [f"{cell_type}_{c}_{dose[c]}" for c in labels]
            ),
        },
        index=pd.Index([f"{i:06d}-{1 + i % 8}" for i in range(n_cells)]),
    )
    var = pd.DataFrame({"gene_name": symbols}, index=pd.Index(var_ids))
    groups = [
        f"{cell_type}_{c}_{dose[c]}" for c in conditions if c != "ctrl"
    ]  # reference ctrl not a key
    uns = {"standin": STANDIN_NOTE, **_de_dicts(rng, groups, var_ids, n_ranked)}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    try:
        # normalize_total's default target is the median total count; a fixed 1e4 stands
        # in for it
        _write_h5ad(
            tmp,
            obs,
            var,
            uns,
            rng,
            model,
            codes,
            chunk_rows=chunk_rows,
            target_sum=1e4,
            counts_layer=entry.counts_layer,
        )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_gears_zip(
    path: str | os.PathLike, dataset: str, *, compresslevel: int = 1, **kwargs
) -> Path:
    """Write a GEARS Dataverse zip stand-in holding ``<name>/perturb_processed.h5ad``
    ([S3]).

    ``dataset`` is the registry name (``norman2019_gears``, ``adamson``,
    ``replogle_k562_essential``, ``replogle_rpe1_essential``); the other keyword
    arguments (``n_cells``, ``n_genes``, ``conditions``, ``seed``, ...) as
    :func:`write_gears_h5ad`.
    """
    registry = data.load_registry()
    gears = {n: e.member for n, e in registry.items() if e.layout == "gears"}
    if dataset not in gears:
        raise InputError(
            f"Unknown GEARS dataset {dataset!r}; one of {sorted(gears)} (registry "
            'entries with layout = "gears").'
        )
    path = Path(path)
    member_file = path.with_name(path.name + ".member.h5ad")
    try:
        write_gears_h5ad(member_file, dataset, **kwargs)
        _zip_member(path, member_file, gears[dataset], compresslevel=compresslevel)
    finally:
        member_file.unlink(missing_ok=True)
    return path


def write_go_gene_list(path: str | os.PathLike, genes) -> Path:
    """GEARS' ``essential_all_data_pert_genes.pkl`` stand-in: a pickled ``list`` of gene
    symbols.

    GEARS only iterates over the unpickled object ([S3] ``set_pert_genes``); the real
    file's exact Python type (list / array) is not known offline, a list is what this
    writes.
    """
    path = Path(path)
    path.write_bytes(pickle.dumps(list(genes), protocol=4))
    return path


def write_gene2go(path: str | os.PathLike, genes, *, seed: int = 0) -> Path:
    """GEARS' ``gene2go_all.pkl`` stand-in: a pickled dict gene symbol -> set of
    (random) GO ids ([S3])."""
    rng = np.random.default_rng(seed)
    table = {g: {f"GO:{int(x):07d}" for x in rng.integers(1, 80_000, 3)} for g in genes}
    Path(path).write_bytes(pickle.dumps(table, protocol=4))
    return Path(path)


def write_standins(
    folder: str | os.PathLike,
    *,
    scale: str = "small",
    datasets=None,
    seed: int = 0,
    overrides: dict[str, dict] | None = None,
    go_exclude=NOT_IN_GO,
) -> dict[str, Path]:
    """Write stand-ins of ``datasets`` and GEARS' two gene pickles under their registry
    file names.

    ``folder``: where to write; ``datasets``: registry names (default: every entry with
    stand-in sizes, in registry order); ``seed``: of the random values (dataset ``k``
    uses ``seed + k``); ``go_exclude``: targets left out of the GO gene list. ``scale``:
    ``"small"`` or ``"full"`` (:data:`SCALES`); ``overrides``: per dataset, keyword
    arguments that replace the scale's (e.g. ``{"norman2019": {"n_cells": 5000}}``). The
    GO gene list covers every target except ``go_exclude`` (default: IER5L, [S5]) and
    the ``NOGO*`` names. Returns ``{registry name: path}``; ``python -m helpers.data
    seed <folder>`` recognises them.
    """
    scales = _scales()
    if scale not in scales:
        raise InputError(f"Unknown scale {scale!r}; one of {sorted(scales)}.")
    if datasets is None:
        datasets = tuple(scales[scale])
    unknown = [name for name in datasets if name not in scales[scale]]
    if unknown:
        raise InputError(
            f"No stand-in sizes for {unknown} in the registry; give each entry "
            f"standin_{scale} in data/registry.toml, or pick from "
            f"{sorted(scales[scale])}."
        )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    all_conditions: list[str] = []
    for k, name in enumerate(datasets):
        spec = dict(scales[scale][name], **(overrides or {}).get(name, {}))
        entry = data.get_entry(name)
        target = folder / entry.filename
        n_singles, n_doubles = spec.pop("n_singles", None), spec.pop("n_doubles", None)
        conditions = spec.pop("conditions", None)
        if conditions is None:
            conditions = (
                norman_conditions(n_singles, n_doubles)
                if n_doubles is not None
                else single_conditions(name, n_singles)
            )
        all_conditions += conditions
        writer = _STANDIN_WRITERS.get(entry.layout)
        if writer is None:
            raise InputError(
                f"No stand-in writer for {name!r} (layout {entry.layout!r}); stand-ins "
                f"exist for the layouts {', '.join(sorted(_STANDIN_WRITERS))}."
            )
        written[name] = writer(
            target, name, conditions=conditions, seed=seed + k, **spec
        )
    genes = go_genes_for(all_conditions, exclude=go_exclude)
    written["gears_go_genes"] = write_go_gene_list(
        folder / data.get_entry("gears_go_genes").filename, genes
    )
    written["gears_gene2go"] = write_gene2go(
        folder / data.get_entry("gears_gene2go").filename, genes, seed=seed
    )
    return written


def _scfoundation_writer(path, dataset: str, **kwargs) -> Path:
    return write_scfoundation_norman_zip(path, **kwargs)


# layout (registry) -> stand-in writer ``(path, dataset, **sizes)``
_STANDIN_WRITERS = {"scfoundation": _scfoundation_writer, "gears": write_gears_zip}


# --------------------------------------------------------------------------------------
# scGPT_human checkpoint ([S8])

#: ``args.json`` of the released whole-human model ([S8]: the census run recorded in
#: scGPT's ``finetuned_model/args.json``, commit 75dd54e); the loaders read embsize /
#: nheads / d_hid / nlayers.
SCGPT_HUMAN_ARGS = {
    "data_source": "/scratch/ssd004/datasets/cellxgene/scb_strict/human",
    "load_model": None,
    "n_hvg": None,
    "valid_size_or_ratio": 0.003,
    "dist_backend": "nccl",
    "grad_accu_steps": 1,
    "input_style": "binned",
    "input_emb_style": "continuous",
    "n_bins": 51,
    "max_seq_len": 1200,
    "training_tasks": "both",
    "mask_ratio": [0.25, 0.5, 0.75],
    "trunc_by_sample": True,
    "vocab_path": "default_census_vocab.json",
    "batch_size": 32,
    "epochs": 6,
    "lr": 0.0001,
    "fp16": True,
    "fast_transformer": True,
    "nlayers": 12,
    "nheads": 8,
    "embsize": 512,
    "d_hid": 512,
    "dropout": 0.2,
    "n_layers_cls": 3,
    "mask_value": -1,
    "pad_value": -2,
    "MVC": True,
    "USE_GENERATIVE_TRAINING": True,
}


def write_scgpt_checkpoint(
    folder: str | os.PathLike,
    genes,
    *,
    n_tokens: int | None = 60_697,
    embsize: int = 512,
    nheads: int = 8,
    d_hid: int = 512,
    nlayers: int = 12,
    seed: int = 0,
) -> tuple[dict, dict[str, int]]:
    """Write a ``scGPT_human/``-shaped folder ([S8]) with random weights; return (state
    dict, vocab).

    The vocabulary holds ``genes`` (ids 0, 1, ...), then ``SYNV...`` fillers up to
    ``n_tokens`` - 3 (``None``: no fillers), then ``<pad>``, ``<cls>``, ``<eoc>``. The
    defaults are the released model's sizes (about 52 M parameters, 200 MB). Values mean
    nothing: SYNTHETIC STAND-IN.
    """
    import json

    import torch

    if isinstance(genes, str):
        raise TypeError(
            f"genes must be a list of gene symbols, not the string {genes!r}."
        )
    if embsize < 1 or nheads < 1 or embsize % nheads or nlayers < 1 or d_hid < 1:
        raise InputError(
            f"embsize={embsize} must be a positive multiple of nheads={nheads} "
            f"(attention splits it into heads), and nlayers={nlayers}, d_hid={d_hid} "
            "must be positive."
        )
    genes = list(dict.fromkeys(map(str, genes)))
    n_fill = 0 if n_tokens is None else n_tokens - 3 - len(genes)
    if n_fill < 0:
        raise InputError(
            f"{len(genes)} genes do not fit a vocabulary of {n_tokens} tokens: give "
            "fewer genes or n_tokens=None."
        )
    names = [
        *genes,
        *(f"SYNV{i:05d}" for i in range(n_fill)),
        "<pad>",
        "<cls>",
        "<eoc>",
    ]
    vocab = {g: i for i, g in enumerate(names)}
    d = embsize
    g = torch.Generator().manual_seed(seed)

    def r(*shape):
        return torch.randn(*shape, generator=g)

    state = {
        "encoder.embedding.weight": r(len(vocab), d),
        "encoder.enc_norm.weight": 1 + r(d),
        "encoder.enc_norm.bias": r(d),
        "value_encoder.linear1.weight": r(d, 1),
        "value_encoder.linear1.bias": r(d),
        "value_encoder.linear2.weight": r(d, d),
        "value_encoder.linear2.bias": r(d),
        "value_encoder.norm.weight": r(d),
        "value_encoder.norm.bias": r(d),
    }
    for i in range(nlayers):
        layer = f"transformer_encoder.layers.{i}."
        state |= {
            layer + "self_attn.Wqkv.weight": r(3 * d, d),
            layer + "self_attn.Wqkv.bias": r(3 * d),
            layer + "self_attn.out_proj.weight": r(d, d),
            layer + "self_attn.out_proj.bias": r(d),
            layer + "linear1.weight": r(d_hid, d),
            layer + "linear1.bias": r(d_hid),
            layer + "linear2.weight": r(d, d_hid),
            layer + "linear2.bias": r(d),
            layer + "norm1.weight": r(d),
            layer + "norm1.bias": r(d),
            layer + "norm2.weight": r(d),
            layer + "norm2.bias": r(d),
        }
    state |= {
        "decoder.fc.0.weight": r(d, d),
        "decoder.fc.0.bias": r(d),
        "decoder.fc.2.weight": r(d, d),
        "decoder.fc.2.bias": r(d),
        "decoder.fc.4.weight": r(1, d),
        "decoder.fc.4.bias": r(1),
        "cls_decoder._decoder.0.weight": r(d, d),
        "cls_decoder._decoder.0.bias": r(d),
        "cls_decoder.out_layer.weight": r(1, d),
        "cls_decoder.out_layer.bias": r(1),
        "mvc_decoder.gene2query.weight": r(d, d),
        "mvc_decoder.gene2query.bias": r(d),
        "mvc_decoder.norm.weight": r(d),
        "mvc_decoder.norm.bias": r(d),
        "mvc_decoder.W.weight": r(d, d),
    }
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(state, folder / "best_model.pt")
    (folder / "vocab.json").write_text(json.dumps(vocab))
    args = SCGPT_HUMAN_ARGS | {
        "embsize": d,
        "nheads": nheads,
        "d_hid": d_hid,
        "nlayers": nlayers,
    }
    (folder / "args.json").write_text(json.dumps(args, indent=4))
    return state, vocab
