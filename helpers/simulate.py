"""A Norman-shaped synthetic Perturb-seq screen with known truth (introduced in chapter
1).

Everything here is **synthetic**: the quick profile uses it where an experiment needs
more conditions than the real Norman subset has, and every figure made from it says so.

The generative model, per cell line ``l`` (log-rate space, natural log):

* baseline ``mu[l, g]``: log relative abundance of gene ``g`` in control cells; a second
  cell line shares most of it (correlation ~0.8) but not all;
* gene programs ``L`` (genes x K) and one embedding ``z[p]`` (K) per perturbed gene
  ``p``; single effect ``delta[p] = L @ z[p] + own[p] * e_p`` (``own``: the
  CRISPRa/CRISPRi effect on the target gene itself). The programs and embeddings are
  shared by all cell lines;
* doubles ``delta[A+B] = delta[A] + delta[B] + interaction[A+B]`` where ``interaction``
  is zero except on planted (double, gene) entries: **buffering** (the combined change
  is shrunk towards control, ``interaction = -b * additive``, 0.5 <= b <= 0.9) or
  **synergy** (amplified, ``interaction = s * additive``, 0.6 <= s <= 1.5), planted only
  where both singles change the gene in the same direction, as the paper's class rules
  require;
* counts: library size ``N_c`` ~ log-normal; ``counts[c, g] ~ NegBin(mean = N_c *
  softmax(mu + delta[p])_g, size = theta)`` (a gamma-Poisson draw); then ``X =
  log1p(counts / total_c * 1e4)`` like the real data.

:func:`simulate_screen` returns the canonical AnnData (one per cell line) and the truth;
:func:`write_norman_scale_h5ad` streams a Norman-sized file (85k cells x 19k genes,
sparse) to disk for the benchmarks without holding it in memory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from .errors import InputError
from .loaders import CONTROL, SparseRowWriter, canonicalize

__all__ = [
    "SimulationTruth",
    "SimulatedScreen",
    "simulate_screen",
    "log_normalise",
    "counts_from_log_normalised",
    "write_norman_scale_h5ad",
]

SIM_NORMALISATION = "log1p(counts / total_counts * 1e4), natural log (simulated)"


@dataclass
class SimulationTruth:
    """The parameters a simulated screen was drawn from."""

    baseline: pd.DataFrame  # cell lines x genes: log relative abundance in control
    programs: pd.DataFrame  # genes x K
    perturbation_embedding: pd.DataFrame  # target genes x K
    single_effects: (
        pd.DataFrame
    )  # singles x genes: log-rate change (shared by cell lines)
    double_effects: pd.DataFrame  # doubles x genes: additive + planted interaction
    interactions: (
        pd.DataFrame
    )  # one row per planted (double, gene): type, additive, interaction
    conditions: dict[str, list[str]] = field(
        default_factory=dict
    )  # cell line -> conditions measured
    params: dict = field(default_factory=dict)

    def effect(self, condition: str) -> pd.Series:
        """True log-rate change of a condition (0 for ``ctrl``)."""
        if condition == CONTROL:
            return pd.Series(0.0, index=self.single_effects.columns)
        if condition in self.single_effects.index:
            return self.single_effects.loc[condition]
        return self.double_effects.loc[condition]


@dataclass
class SimulatedScreen:
    """Simulated cells (canonical AnnData per cell line) and the truth behind them."""

    adatas: dict[str, ad.AnnData]
    truth: SimulationTruth

    @property
    def adata(self) -> ad.AnnData:
        """The first (main) cell line."""
        return next(iter(self.adatas.values()))


def _gene_names(n: int) -> list[str]:
    width = max(4, len(str(n)))
    return [f"SIM{i:0{width}d}" for i in range(1, n + 1)]


class _Model:
    """Draws the parameters shared by :func:`simulate_screen` and
    :func:`write_norman_scale_h5ad`."""

    def __init__(
        self,
        rng: np.random.Generator,
        n_genes: int,
        n_single: int,
        n_double: int,
        n_programs: int,
        effect_scale: float,
        modality: str,
        interaction_fraction: float,
        cell_lines: tuple[str, ...],
        second_line_overlap: float,
    ):
        if modality not in {"CRISPRa", "CRISPRi"}:
            raise InputError(
                f"modality must be 'CRISPRa' or 'CRISPRi', got {modality!r}."
            )
        if n_single > n_genes:
            raise InputError(
                f"Cannot perturb {n_single} genes out of {n_genes}: n_single must be "
                "<= n_genes."
            )
        max_pairs = n_single * (n_single - 1) // 2
        if n_double > max_pairs:
            raise InputError(
                f"{n_double} doubles requested but only {max_pairs} pairs of "
                f"{n_single} singles exist: ask for at most {max_pairs}."
            )
        if not 0 <= interaction_fraction <= 1:
            raise InputError("interaction_fraction must lie in [0, 1].")
        self.genes = _gene_names(n_genes)
        G = n_genes
        # baselines: log-abundance with a long right tail (a few genes dominate, as in
        # real data)
        mu0 = rng.normal(0.0, 1.6, G)
        lines = {cell_lines[0]: mu0}
        for line in cell_lines[1:]:
            lines[line] = 0.8 * mu0 + 0.6 * 1.6 * rng.normal(0.0, 1.0, G)
        self.baseline = pd.DataFrame(lines, index=self.genes).T
        # programs: each gene loads on few programs
        loadings = rng.normal(0.0, 1.0, (G, n_programs)) * (
            rng.random((G, n_programs)) < 0.2
        )
        self.programs = pd.DataFrame(
            loadings,
            index=self.genes,
            columns=[f"program{k + 1}" for k in range(n_programs)],
        )
        # perturbation targets: CRISPRa screens like Norman's activate mostly weakly
        # expressed regulators (a target among the most expressed genes would take over
        # the library and make every double look non-additive); CRISPRi screens knock
        # down expressed (essential) genes. Drawn uniformly from the lower or upper
        # half.
        ranked = np.argsort(mu0)
        pool = ranked[: G // 2] if modality == "CRISPRa" else ranked[G // 2 :]
        if n_single > len(pool):
            pool = ranked
        targets = rng.choice(pool, size=n_single, replace=False)
        self.targets = [self.genes[i] for i in targets]
        # embeddings: each perturbation activates 1-3 programs with a
        # perturbation-specific strength
        z = np.zeros((n_single, n_programs))
        for i in range(n_single):
            k = rng.choice(n_programs, size=rng.integers(1, 4), replace=False)
            z[i, k] = rng.normal(0.0, 1.0, len(k))
        strength = rng.lognormal(np.log(effect_scale), 0.6, n_single)
        z *= strength[:, None]
        self.embedding = pd.DataFrame(
            z, index=self.targets, columns=self.programs.columns
        )
        own = (2.5 if modality == "CRISPRa" else -1.5) * rng.uniform(0.5, 1.5, n_single)
        single = z @ loadings.T
        single[np.arange(n_single), targets] += own
        self.single = pd.DataFrame(single, index=self.targets, columns=self.genes)
        # doubles: distinct random pairs of singles
        pairs: set[tuple[int, int]] = set()
        while len(pairs) < n_double:
            a, b = rng.choice(n_single, size=2, replace=False)
            pairs.add((int(min(a, b)), int(max(a, b))))
        pair_list = sorted(pairs)
        rng.shuffle(pair_list)
        doubles = [f"{self.targets[a]}+{self.targets[b]}" for a, b in pair_list]
        additive = (
            np.array([single[a] + single[b] for a, b in pair_list])
            if pair_list
            else np.zeros((0, G))
        )
        interaction = np.zeros_like(additive)
        rows = []
        for d, (a, b) in enumerate(pair_list):
            same = (np.sign(single[a]) == np.sign(single[b])) & (
                np.abs(additive[d]) > 0.3
            )
            same[[targets[a], targets[b]]] = False
            candidates = np.flatnonzero(same)
            n_plant = int(round(interaction_fraction * len(candidates)))
            if n_plant == 0:
                continue
            chosen = rng.choice(candidates, size=n_plant, replace=False)
            kinds = rng.choice(["buffering", "synergy"], size=n_plant, p=[0.7, 0.3])
            for g, kind in zip(chosen, kinds):
                factor = (
                    -rng.uniform(0.5, 0.9)
                    if kind == "buffering"
                    else rng.uniform(0.6, 1.5)
                )
                interaction[d, g] = factor * additive[d, g]
                rows.append(
                    (doubles[d], self.genes[g], kind, additive[d, g], interaction[d, g])
                )
        self.double = pd.DataFrame(
            additive + interaction, index=doubles, columns=self.genes
        )
        self.interactions = pd.DataFrame(
            rows, columns=["condition", "gene", "type", "additive", "interaction"]
        )
        # which conditions each cell line measures (line 2: a subset of the singles, no
        # doubles)
        self.conditions = {cell_lines[0]: [CONTROL, *self.targets, *doubles]}
        for line in cell_lines[1:]:
            keep = rng.random(n_single) < second_line_overlap
            self.conditions[line] = [
                CONTROL,
                *[t for t, k in zip(self.targets, keep) if k],
            ]

    def effect_matrix(self, conditions: list[str]) -> np.ndarray:
        table = pd.concat([self.single, self.double])
        out = np.zeros((len(conditions), len(self.genes)))
        idx = [i for i, c in enumerate(conditions) if c != CONTROL]
        if idx:
            out[idx] = table.loc[[conditions[i] for i in idx]].to_numpy()
        return out

    def truth(self, params: dict) -> SimulationTruth:
        return SimulationTruth(
            baseline=self.baseline,
            programs=self.programs,
            perturbation_embedding=self.embedding,
            single_effects=self.single,
            double_effects=self.double,
            interactions=self.interactions,
            conditions=self.conditions,
            params=params,
        )


def _draw_cells(
    rng: np.random.Generator,
    log_rates: np.ndarray,
    library_size: float,
    theta: float,
) -> sp.csr_matrix:
    """Counts for cells whose rows of ``log_rates`` (cells x genes, unnormalised) are
    given; CSR float32."""
    probs = np.exp(log_rates - log_rates.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    n_counts = rng.lognormal(np.log(library_size), 0.3, size=len(probs))
    mean = probs * n_counts[:, None]
    counts = rng.poisson(mean * rng.gamma(theta, 1.0 / theta, size=mean.shape))
    return sp.csr_matrix(counts.astype(np.float32))


def log_normalise(counts: sp.csr_matrix) -> sp.csr_matrix:
    """``log1p(counts / total * 1e4)`` per cell (cells x genes, CSR, float32): the
    log-normalised layer of the book's screens (the published Norman / Replogle files'
    ``X``; a cell with no counts stays 0). ``counts``: raw counts, cells x genes."""
    totals = np.asarray(counts.sum(axis=1)).ravel()
    totals[totals == 0] = 1.0
    X = sp.diags((1e4 / totals).astype(np.float32)) @ counts
    X = sp.csr_matrix(X, dtype=np.float32)
    np.log1p(X.data, out=X.data)
    return X


def counts_from_log_normalised(
    x, size=None, *, target_sum: float = 1e4
) -> tuple[sp.csr_matrix, np.ndarray]:
    """Counts and size factors behind log-normalised cells ``x = log1p(c / s * T)``,
    the inverse of :func:`log_normalise` (``T = target_sum``).

    Per cell, the value of one count is ``u = T / s``. With ``size`` (each cell's total
    count ``s``) it is known; without it, the paper's recipe (``run_cpa.py``): ``u`` is
    the cell's smallest positive ``expm1(x)``, which assumes its rarest measured gene
    had 1 count (exact whenever one gene had a single count, otherwise every count is
    divided by the smallest), and ``s = T / u``. Then ``c = round(expm1(x) / u)``
    (half to even).

    ``x``: cells x genes log-normalised values (dense or scipy sparse; not changed);
    ``size``: one total count per cell, or ``None`` for the paper's recipe;
    ``target_sum``: ``T``. Returns ``(counts, size)``: float64 CSR counts without
    stored zeros, and each cell's ``s`` (NaN for a cell without a positive value when
    ``size`` is not given; its counts are ``round(expm1(x))``).
    """
    lin = x.tocsr() if sp.issparse(x) else sp.csr_matrix(np.asarray(x))
    lin = sp.csr_matrix(lin, dtype=np.float64, copy=True)
    lin.eliminate_zeros()
    lin.data = np.expm1(lin.data)
    per_cell = np.diff(lin.indptr)
    if size is None:
        positive = np.where(lin.data > 0, lin.data, np.inf)
        unit = np.full(lin.shape[0], np.inf)
        filled = per_cell > 0
        if filled.any():
            unit[filled] = np.minimum.reduceat(positive, lin.indptr[:-1][filled])
        size = np.where(np.isfinite(unit), target_sum / unit, np.nan)
        unit[~np.isfinite(unit)] = 1.0
    else:
        size = np.asarray(size, dtype=np.float64).reshape(-1)
        if len(size) != lin.shape[0] or not (size > 0).all():
            raise InputError(
                f"{len(size)} size factors for {lin.shape[0]} cells, or one not "
                "positive; give one positive total count per cell"
            )
        unit = target_sum / size
    lin.data = np.rint(lin.data / np.repeat(unit, per_cell))
    lin.eliminate_zeros()
    return lin, size


def simulate_screen(
    *,
    n_genes: int = 2000,
    n_single: int = 100,
    n_double: int = 124,
    cells_per_condition: int = 100,
    n_control_cells: int | None = None,
    n_programs: int = 10,
    effect_scale: float = 0.12,
    modality: str = "CRISPRa",
    interaction_fraction: float = 0.3,
    library_size: float = 15000.0,
    theta: float = 8.0,
    cell_lines: tuple[str, ...] = ("simK562",),
    second_line_overlap: float = 0.8,
    seed: int = 0,
) -> SimulatedScreen:
    """Simulate a Perturb-seq screen shaped like Norman 2019 (see the module docstring
    for the model).

    Defaults: 2,000 genes, 100 singles and 124 doubles plus control, 100 cells per
    condition (control: 4x as many unless ``n_control_cells`` is given), ~15,000 UMIs
    per cell. They were tuned so that the additive baseline's error resembles the
    paper's on the real Norman data (L2 on the top 1,000 genes); the no-change error is
    smaller than the paper's (the simulated doubles change less). Chapter 2 prints both
    next to the published means. Give two ``cell_lines`` for a second "cell line" that
    shares the perturbation programs with a different baseline; it measures control and
    a random ``second_line_overlap`` share of the singles (no doubles). Same arguments
    and seed -> identical data and truth.

    Sizes: ``n_genes`` genes, ``n_single`` singles, ``n_double`` doubles,
    ``cells_per_condition`` cells each; ``n_programs`` gene programs; ``effect_scale``:
    the median strength of a single's effect; ``modality`` (``CRISPRa`` or
    ``CRISPRi``); ``interaction_fraction``: share of the eligible (double, gene)
    entries that get a planted interaction; ``library_size``: mean UMIs per cell;
    ``theta``: size of the negative binomial (gamma-Poisson) draw; ``seed``: the
    random seed.
    """
    if cells_per_condition < 1:
        raise InputError("cells_per_condition must be at least 1.")
    if len(set(cell_lines)) != len(cell_lines) or not cell_lines:
        raise InputError("cell_lines must be one or more distinct names.")
    params = dict(locals())
    from .data import (
        record_use,
    )  # the build labels each page with the data it read, simulated included

    record_use(
        "simulated",
        kind="synthetic",
        detail="helpers.simulate.simulate_screen("
        f"seed={seed}, cell_lines={list(cell_lines)})",
    )
    rng = np.random.default_rng(seed)
    model = _Model(
        rng,
        n_genes,
        n_single,
        n_double,
        n_programs,
        effect_scale,
        modality,
        interaction_fraction,
        tuple(cell_lines),
        second_line_overlap,
    )
    n_control_cells = n_control_cells or 4 * cells_per_condition
    adatas = {}
    for line in cell_lines:
        conditions = model.conditions[line]
        n_cells = np.array(
            [
                n_control_cells if c == CONTROL else cells_per_condition
                for c in conditions
            ]
        )
        cell_condition = np.repeat(np.arange(len(conditions)), n_cells)
        log_rates = model.baseline.loc[line].to_numpy()[None, :] + model.effect_matrix(
            conditions
        )
        counts = _draw_cells(rng, log_rates[cell_condition], library_size, theta)
        obs = pd.DataFrame(
            {"condition": np.asarray(conditions, dtype=object)[cell_condition]},
            index=[f"{line}_cell{i:06d}" for i in range(len(cell_condition))],
        )
        adata = ad.AnnData(
            X=log_normalise(counts),
            obs=obs,
            var=pd.DataFrame(index=pd.Index(model.genes)),
            layers={"counts": counts},
        )
        adatas[line] = canonicalize(
            adata,
            condition_key="condition",
            dataset=f"simulated_{line}",
            layout="simulated",
            normalisation=SIM_NORMALISATION,
            cell_line=line,
            source_file=f"helpers.simulate.simulate_screen(seed={seed})",
        )
        adatas[line].uns["perturbbook"]["synthetic"] = True
    return SimulatedScreen(adatas=adatas, truth=model.truth(params))


def write_norman_scale_h5ad(
    path: str | os.PathLike,
    *,
    n_cells: int = 85_000,
    n_genes: int = 19_000,
    n_single: int = 100,
    n_double: int = 124,
    chunk_cells: int = 2_000,
    library_size: float = 8000.0,
    seed: int = 0,
) -> Path:
    """Stream a Norman-sized synthetic screen to an h5ad file (CSR ``X``, canonical
    obs/var).

    Cells are drawn ``chunk_cells`` at a time and appended to the file, so memory stays
    small whatever ``n_cells`` is. The file is written to a temporary name and renamed
    when complete.
    """
    import h5py

    path = Path(path)
    from .data import record_use

    record_use(
        "simulated",
        kind="synthetic",
        detail=f"helpers.simulate.write_norman_scale_h5ad(seed={seed})",
    )
    rng = np.random.default_rng(seed)
    model = _Model(
        rng, n_genes, n_single, n_double, 10, 0.12, "CRISPRa", 0.3, ("simK562",), 1.0
    )
    conditions = model.conditions["simK562"]
    cell_condition = rng.integers(0, len(conditions), size=n_cells)
    cell_condition[: min(n_cells, 2000)] = 0  # a well-sampled control
    rng.shuffle(cell_condition)
    baseline = model.baseline.loc["simK562"].to_numpy()[None, :]
    effects = model.effect_matrix(conditions)

    obs = pd.DataFrame(
        {
            "condition": pd.Categorical(
                np.asarray(conditions, dtype=object)[cell_condition],
                categories=conditions,
            )
        },
        index=pd.Index([f"cell{i:07d}" for i in range(n_cells)], name="cell"),
    )
    adata = ad.AnnData(obs=obs, var=pd.DataFrame(index=pd.Index(model.genes)))
    adata = canonicalize(
        adata,
        condition_key="condition",
        dataset="simulated_norman_scale",
        layout="simulated",
        normalisation=SIM_NORMALISATION,
        cell_line="simK562",
        source_file=f"helpers.simulate.write_norman_scale_h5ad(seed={seed})",
    )
    adata.uns["perturbbook"]["synthetic"] = True
    tmp = path.with_name(path.name + ".part")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        adata.write_h5ad(tmp)  # obs, var, uns; X is appended chunk by chunk below
        with h5py.File(tmp, "a") as f:
            X = SparseRowWriter(f, "X")
            for start in range(0, n_cells, chunk_cells):
                stop = min(start + chunk_cells, n_cells)
                rows = cell_condition[start:stop]
                X.append(
                    log_normalise(
                        _draw_cells(rng, baseline + effects[rows], library_size, 8.0)
                    )
                )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
