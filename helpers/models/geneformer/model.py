"""Geneformer*: pretrain the book's tiny Geneformer, embed each condition (chapter 5).

The network is the real ``transformers`` BERT (``BertForMaskedLM`` for pretraining,
``BertForSequenceClassification`` for the optional fine-tuning, ``BertModel`` for the
embeddings), as Geneformer uses it. The protocol of the paper's ``run_geneformer.py``:

1. tokenise the control cells (:func:`.tokenizer.rank_value_tokens`);
2. (paper) fine-tune the model as a classifier of the training conditions
   (:func:`fine_tune`);
3. choose the control cells to perturb as Geneformer's ``InSilicoPerturber`` does
   (:func:`.tokenizer.select_cells`, 150 cells);
4. for each condition, perturb every chosen cell in silico (``"overexpress"`` for a
   combinatorial CRISPRa screen such as Norman's, ``"delete"`` for a single-gene
   screen) and average the last layer's ``<cls>`` output over the cells; ``ctrl`` gets
   zeros; a condition with a gene outside the vocabulary is not embedded.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from ...errors import InputError
from ...resources import peak_rss_gb as _peak_rss_gb
from ..device import device_for
from ..log import TrainingLog
from . import tokenizer as tk
from .checkpoint import GeneformerFolder, read_folder, write_dictionaries

__all__ = [
    "pretrain_tiny",
    "condition_embeddings",
    "fine_tune",
    "tokenize_adata",
    "cls_embeddings",
]

MODEL_NAME = "tiny_geneformer"


# --------------------------------------------------------------------------- threads
@contextlib.contextmanager
def _quiet_transformers():
    """transformers' warnings (unused heads) and progress bars (weights loaded, shards
    written) off while loading or saving, restored after."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


@contextlib.contextmanager
def _cpu_threads(dev):
    """One torch thread on a CPU machine with at most 4 cores, restored afterwards.

    On the book's shared 2-core machines two threads spin against each other's
    barriers whenever another process holds a core: pretraining and embedding then ran
    5 to 10 times slower than on one thread (measured)."""
    before = torch.get_num_threads()
    small = torch.device(dev).type == "cpu" and (os.cpu_count() or 1) <= 4
    if small:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if small:
            torch.set_num_threads(before)


def _small_cpu_threads(fn):
    """Run ``fn`` under :func:`_cpu_threads` (its ``device=`` keyword decides)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with _cpu_threads(device_for(kwargs.get("device"))):
            return fn(*args, **kwargs)

    return wrapper


# --------------------------------------------------------------------------- data
def _counts(adata) -> sp.csr_matrix:
    if "counts" not in adata.layers:
        raise InputError(
            "adata has no layers['counts']; Geneformer tokenises raw counts: add them "
            "as adata.layers['counts']"
        )
    return sp.csr_matrix(adata.layers["counts"], dtype=np.float64)


def _condition_column(adata) -> pd.Series:
    if "condition" not in adata.obs:
        raise InputError(
            "adata.obs has no 'condition' column; label each cell 'ctrl', 'A' or 'A+B'"
        )
    return adata.obs["condition"].astype(str)


def _gene_ids(symbols: Sequence[str], gf: GeneformerFolder) -> list[str | None]:
    """Symbol -> the id the tokenizer uses (symbol -> Ensembl, then collapsed), or
    ``None`` where the model has no token for it."""
    mapping = {
        k: v for k, v in gf.mapping_dict.items() if v in gf.token_dict
    }  # Geneformer keeps only mappings onto the vocabulary
    out = []
    for s in symbols:
        gid = gf.name_id_dict.get(s, s)
        out.append(mapping.get(str(gid).upper()))
    return out


def tokenize_adata(adata, gf: GeneformerFolder, *, model_input_size: int):
    """Token ids of every cell of ``adata`` (list of arrays, in cell order).

    ``adata``: the book's AnnData (raw counts in ``layers['counts']``, gene symbols as
    ``var_names``); ``gf``: the loaded folder (:func:`.checkpoint.read_folder`);
    ``model_input_size``: the model's positions. ``n_counts`` is each cell's total
    count over all genes, as Geneformer asks; genes that collapse to the same id are
    summed (Geneformer's ``collapse_gene_ids``).
    """
    x = _counts(adata)
    n_counts = np.asarray(x.sum(axis=1)).ravel()
    ids = _gene_ids([str(g) for g in adata.var_names], gf)
    keep = [i for i, g in enumerate(ids) if g is not None]
    uniq = list(dict.fromkeys(ids[i] for i in keep))
    col = {g: j for j, g in enumerate(uniq)}
    agg = sp.csr_matrix(
        (np.ones(len(keep)), (keep, [col[ids[i]] for i in keep])),
        shape=(x.shape[1], len(uniq)),
    )
    return tk.rank_value_tokens(
        x @ agg,
        uniq,
        gf.token_dict,
        median_dict=gf.median_dict,
        n_counts=n_counts,
        model_input_size=model_input_size,
    )


# --------------------------------------------------------------------------- network
def _bert_config(n_tokens: int, *, model_input_size, hidden, layers, heads):
    from transformers import BertConfig

    # Geneformer's settings (relu, dropout 0.02, eps 1e-12), tiny sizes
    return BertConfig(
        vocab_size=n_tokens,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=2 * hidden,
        hidden_act="relu",
        hidden_dropout_prob=0.02,
        attention_probs_dropout_prob=0.02,
        max_position_embeddings=model_input_size,
        initializer_range=0.02,
        layer_norm_eps=1e-12,
        pad_token_id=0,
        type_vocab_size=2,
    )


def _pad(batch: list[list[int]], pad_id: int, dev):
    width = max(len(s) for s in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, s in enumerate(batch):
        ids[i, : len(s)] = torch.as_tensor(s, dtype=torch.long)
        mask[i, : len(s)] = 1
    return ids.to(dev), mask.to(dev)


def _mask_tokens(ids, mask, gen, n_tokens: int, prob: float = 0.15):
    """BERT masking as ``DataCollatorForLanguageModeling`` (Geneformer's pretrainer):
    15% of the non-special positions; of those 80% <mask>, 10% a random token, 10%
    kept."""
    labels = ids.clone()
    special = (ids < len(tk.SPECIAL_TOKENS)) | (mask == 0)
    p = torch.full(ids.shape, prob)
    p[special] = 0.0
    chosen = torch.bernoulli(p, generator=gen).bool()
    labels[~chosen] = -100
    inputs = ids.clone()
    to_mask = torch.bernoulli(torch.full(ids.shape, 0.8), generator=gen).bool()
    to_mask &= chosen
    inputs[to_mask] = 1  # <mask>
    rand = torch.bernoulli(torch.full(ids.shape, 0.5), generator=gen).bool()
    rand &= chosen & ~to_mask
    random_ids = torch.randint(
        len(tk.SPECIAL_TOKENS), n_tokens, ids.shape, generator=gen
    )
    inputs[rand] = random_ids[rand]
    return inputs, labels


def _mlm_loss(model, inputs, mask, labels):
    """``BertForMaskedLM``'s loss (cross-entropy over the masked positions), with the
    vocabulary head run on the masked positions only (the same value, less work)."""
    hidden = model.bert(input_ids=inputs, attention_mask=mask).last_hidden_state
    chosen = labels != -100
    logits = model.cls(hidden[chosen])
    return torch.nn.functional.cross_entropy(logits, labels[chosen])


@_small_cpu_threads
def pretrain_tiny(
    adata,
    folder: str | os.PathLike,
    seed: int = 0,
    *,
    model_input_size: int = 128,
    hidden: int = 32,
    layers: int = 2,
    heads: int = 2,
    epochs: int = 4,
    batch_size: int = 32,
    lr: float = 1e-3,
    device: str | None = None,
) -> TrainingLog:
    """Pretrain the book's tiny Geneformer (``tiny_geneformer``) on the control cells.

    ``adata``: the book's AnnData (``layers['counts']``, ``obs['condition']``, gene
    symbols); ``folder``: where the model goes, in Geneformer's layout (``config.json``,
    ``model.safetensors`` and the four ``*_gc95M.pkl`` dictionaries, see
    :mod:`.checkpoint`); ``seed``: all randomness; ``model_input_size``: positions
    (released: 4,096); ``hidden``, ``layers``, ``heads``: the BERT's sizes (released:
    512, 12, 8); ``epochs``, ``batch_size``, ``lr``: masked-token training (AdamW,
    weight decay 0.001, linear warm-up over the first 10% of steps then linear decay,
    as Geneformer's pretrainer); ``device``: where to train.

    The dictionaries come from the control cells: the gene median dictionary is each
    gene's median of ``counts / n_counts * 10^4`` over the control cells that detect it
    (Geneformer's "non-zero median"); the vocabulary is ``<pad>``, ``<mask>``,
    ``<cls>``, ``<eos>`` and those genes in ``var_names`` order. The SIM gene symbols
    stand in for Ensembl ids. 10% of the control cells are held out for ``val_loss``.
    """
    from transformers import BertForMaskedLM

    start = time.perf_counter()
    cond = _condition_column(adata)
    ctrl = np.flatnonzero(cond.values == "ctrl")
    if ctrl.size < 2:
        raise InputError(
            "pretrain_tiny needs at least 2 control cells (obs['condition'] == 'ctrl')"
        )
    counts = _counts(adata)
    symbols = [str(g) for g in adata.var_names]
    medians = tk.gene_medians(counts[ctrl], symbols)
    genes = [g for g in symbols if g in medians]
    token_dict = {t: i for i, t in enumerate(tk.SPECIAL_TOKENS)}
    token_dict.update({g: i + len(tk.SPECIAL_TOKENS) for i, g in enumerate(genes)})
    folder = Path(folder)
    write_dictionaries(
        folder,
        token_dict=token_dict,
        median_dict={g: medians[g] for g in genes},
        name_id_dict={g: g for g in genes},
        mapping_dict={g: g for g in genes},
    )
    gf = _read_dictionaries(folder)
    sentences = tokenize_adata(adata[ctrl], gf, model_input_size=model_input_size)

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    dev = device_for(device)
    config = _bert_config(
        len(token_dict),
        model_input_size=model_input_size,
        hidden=hidden,
        layers=layers,
        heads=heads,
    )
    model = BertForMaskedLM(config).to(dev)
    order = rng.permutation(len(sentences))
    n_val = max(1, len(sentences) // 10)
    val, train = order[:n_val], order[n_val:]
    n_steps = epochs * math.ceil(len(train) / batch_size)
    warm = max(1, n_steps // 10)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.001)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: (
            (s + 1) / warm
            if s < warm
            else max(0.0, (n_steps - s) / max(1, n_steps - warm))
        ),
    )
    log = TrainingLog(device=str(dev), note=f"{MODEL_NAME}: masked-token pretraining")
    val_ids, val_mask = _pad([list(sentences[i]) for i in val], 0, "cpu")
    val_gen = torch.Generator().manual_seed(seed + 1)
    val_inputs, val_labels = _mask_tokens(val_ids, val_mask, val_gen, len(token_dict))
    for _ in range(epochs):
        model.train()
        losses = []
        for b in range(0, len(train), batch_size):
            idx = train[b : b + batch_size]
            ids, mask = _pad([list(sentences[i]) for i in idx], 0, "cpu")
            inputs, labels = _mask_tokens(ids, mask, gen, len(token_dict))
            loss = _mlm_loss(model, inputs.to(dev), mask.to(dev), labels.to(dev))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
            log.cells_seen += len(idx)
            log.steps += 1
        train = rng.permutation(train)
        log.train_loss.append(float(np.mean(losses)))
        model.eval()
        with torch.no_grad():
            loss = _mlm_loss(
                model, val_inputs.to(dev), val_mask.to(dev), val_labels.to(dev)
            )
        log.val_loss.append(float(loss.item()))
    log.best_epoch = len(log.val_loss)  # the last epoch's weights are saved
    with _quiet_transformers():
        model.to("cpu").save_pretrained(folder)
    log.seconds, log.peak_rss_gb = time.perf_counter() - start, _peak_rss_gb()
    return log


def _read_dictionaries(folder: Path) -> GeneformerFolder:
    """The dictionaries of ``folder`` before its weights exist (used while
    pretraining)."""
    import pickle

    from .checkpoint import DICTIONARY_FILES

    loaded = {}
    for key, name in DICTIONARY_FILES.items():
        with open(Path(folder) / name, "rb") as f:
            loaded[key] = pickle.load(f)
    return GeneformerFolder(
        Path(folder),
        loaded["token"],
        loaded["median"],
        loaded["name_id"],
        loaded["mapping"],
    )


# --------------------------------------------------------------------------- embed
def _load_encoder(folder: Path, dev):
    from transformers import BertModel

    with _quiet_transformers():  # the MLM / classifier heads are not used
        model = BertModel.from_pretrained(str(folder), add_pooling_layer=False)
    return model.to(dev).eval()


def cls_embeddings(
    model, sentences: Sequence[Sequence[int]], *, pad_id: int = 0, batch_size=100
) -> np.ndarray:
    """The last layer's ``<cls>`` output of each sentence (cells x hidden, float32).

    ``model``: a ``BertModel`` (eval mode); ``sentences``: token ids, each starting
    with ``<cls>``; ``pad_id``: the padding token; ``batch_size``: cells per forward
    pass (the paper: 100). Each batch is padded to its longest sentence with an
    attention mask, as Geneformer's ``get_embs`` does.
    """
    dev = next(model.parameters()).device
    out = []
    with torch.no_grad():
        for b in range(0, len(sentences), batch_size):
            ids, mask = _pad(
                [list(s) for s in sentences[b : b + batch_size]], pad_id, dev
            )
            hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
            out.append(hidden[:, 0, :].float().cpu().numpy())
    hidden_size = model.config.hidden_size
    return np.concatenate(out) if out else np.zeros((0, hidden_size), np.float32)


def _targets(condition: str) -> list[str]:
    return [g for g in condition.split("+") if g != "ctrl"]


@_small_cpu_threads
def condition_embeddings(
    folder: str | os.PathLike,
    adata,
    conditions: Sequence[str],
    *,
    seed: int = 0,
    perturb_type: str | None = None,
    max_ncells: int = 150,
    batch_size: int = 100,
    fine_tune: bool = False,
    train_conditions: Sequence[str] | None = None,
    fine_tune_epochs: int = 10,
    on_missing: str = "leave_out",
    dictionaries: str | os.PathLike | None = None,
    device: str | None = None,
) -> pd.DataFrame:
    """One embedding per condition, as the paper's ``run_geneformer.py``.

    ``folder``: a Geneformer model folder (:mod:`.checkpoint`; the released
    ``gf-12L-95M-i4096`` or :func:`pretrain_tiny`'s); ``adata``: the book's AnnData
    (raw counts in ``layers['counts']``); ``conditions``: the labels to embed (``ctrl``
    included); ``seed``: the fine-tuning's randomness (the cells perturbed are chosen
    with Geneformer's fixed seed 42); ``perturb_type``: ``"overexpress"`` or
    ``"delete"``; default ``"overexpress"`` when a condition of ``adata`` has two
    targets (a CRISPRa combinatorial screen such as Norman's, as in the paper) else
    ``"delete"``; ``max_ncells``: control cells perturbed (paper 150);
    ``batch_size``: cells per forward pass (paper 100);
    ``fine_tune``: first fine-tune the model as a classifier of ``train_conditions``
    (the paper does; :func:`fine_tune`; the quick profile skips it);
    ``fine_tune_epochs``: its epochs (paper 10); ``on_missing``: ``"leave_out"``
    (the paper: a condition with a target outside the vocabulary is not embedded) or
    ``"raise"`` (an :class:`~helpers.errors.InputError` naming it);
    ``dictionaries``: folder of the four pickles if not in ``folder``; ``device``:
    where to run.

    Embedding of a condition with target tokens :math:`t`:
    :math:`e = \\frac{1}{|C|}\\sum_{c \\in C} h^{(L)}_{\\mathrm{cls}}(\\mathrm{perturb}
    (s_c, t))`, over the chosen control cells :math:`C`; ``ctrl`` gets zeros. Returns
    a float64 DataFrame (index: the embedded conditions, columns ``dim_0``...);
    ``attrs['not_embedded']`` maps each left-out condition to the reason (a target
    outside the model's vocabulary, as the paper drops unmappable genes);
    ``attrs['perturb_type']``, ``attrs['n_cells']``, ``attrs['model']``.
    """
    gf = read_folder(folder, dictionaries=dictionaries)
    cond = _condition_column(adata)
    conditions = [str(c) for c in conditions]
    if perturb_type is None:
        perturb_type = (
            "overexpress" if any("+" in c for c in cond.unique()) else "delete"
        )
    if perturb_type not in ("overexpress", "delete"):
        raise InputError(
            f"perturb_type {perturb_type!r} is not Geneformer's; use 'overexpress' "
            "or 'delete'"
        )
    if on_missing not in ("leave_out", "raise"):
        raise InputError(
            f"on_missing {on_missing!r} is unknown; use 'leave_out' or 'raise'"
        )
    dev = device_for(device)
    model_dir = Path(folder)
    tmp = None
    if fine_tune:
        if not train_conditions:
            raise InputError(
                "fine_tune=True needs train_conditions= (the training conditions the "
                "classifier learns, ctrl included)"
            )
        tmp = tempfile.TemporaryDirectory(prefix="geneformer_ft_")
        _fine_tune(
            folder,
            adata,
            train_conditions,
            out_folder=tmp.name,
            seed=seed,
            epochs=fine_tune_epochs,
            dictionaries=dictionaries,
            device=device,
        )
        model_dir = Path(tmp.name)
    try:
        model = _load_encoder(model_dir, dev)
        max_len = int(model.config.max_position_embeddings)
        ctrl = np.flatnonzero(cond.values == "ctrl")
        if ctrl.size == 0:
            raise InputError(
                "adata has no control cells (obs['condition'] == 'ctrl'); Geneformer* "
                "perturbs control cells"
            )
        sentences = tokenize_adata(adata[ctrl], gf, model_input_size=max_len)
        chosen = tk.select_cells([len(s) for s in sentences], max_ncells)
        cells = [sentences[i].tolist() for i in chosen]
        pad_id = int(gf.token_dict.get("<pad>", 0))
        ids_of = dict(
            zip(
                adata.var_names.astype(str),
                _gene_ids([str(g) for g in adata.var_names], gf),
            )
        )
        rows, not_embedded, plan = {}, {}, []
        hidden = int(model.config.hidden_size)
        for c in conditions:
            genes = _targets(c)
            if not genes:
                rows[c] = np.zeros(hidden)
                continue
            ids = [ids_of.get(g) or _gene_ids([g], gf)[0] for g in genes]
            missing = [g for g, i in zip(genes, ids) if i is None]
            if missing and on_missing == "raise":
                raise InputError(
                    f"condition {c!r}: {', '.join(missing)} not in the model's "
                    "vocabulary; drop the condition or pass on_missing='leave_out'"
                )
            if missing:
                not_embedded[c] = f"{', '.join(missing)} not in the model's vocabulary"
                continue
            plan.append((c, [int(gf.token_dict[i]) for i in ids]))
        # one condition at a time, its cells in batches of `batch_size`, as the paper
        means = {}
        for c, tokens in plan:
            if perturb_type == "overexpress":
                pert = [tk.overexpress(s, tokens, max_len) for s in cells]
            else:
                try:
                    pert = [tk.delete(s, tokens) for s in cells]
                except InputError:
                    not_embedded[c] = (
                        "Geneformer's delete fails: no target in a cell shorter than "
                        "100 tokens"
                    )
                    continue
            emb = cls_embeddings(model, pert, pad_id=pad_id, batch_size=batch_size)
            means[c] = emb.astype(np.float64).mean(axis=0)
        rows = {
            c: rows[c] if c in rows else means[c]
            for c in conditions
            if c in rows or c in means
        }
    finally:
        if tmp is not None:
            tmp.cleanup()
    table = pd.DataFrame.from_dict(rows, orient="index", dtype=np.float64)
    table.columns = [f"dim_{j}" for j in range(table.shape[1])]
    table.index.name = "condition"
    table.attrs["not_embedded"] = not_embedded
    table.attrs["perturb_type"] = perturb_type
    table.attrs["n_cells"] = len(cells)
    table.attrs["model"] = "fine-tuned" if fine_tune else "pretrained"
    return table


# --------------------------------------------------------------------------- fine-tune
@_small_cpu_threads
def fine_tune(
    folder: str | os.PathLike,
    adata,
    train_conditions: Sequence[str],
    *,
    out_folder: str | os.PathLike,
    seed: int = 0,
    max_ncells_per_class: int = 300,
    freeze_layers: int = 2,
    epochs: int = 10,
    batch_size: int = 12,
    lr: float = 5e-5,
    dictionaries: str | os.PathLike | None = None,
    device: str | None = None,
) -> TrainingLog:
    """Fine-tune the model as a classifier of the training conditions (the paper).

    ``folder``: the pretrained model folder; ``adata``: the book's AnnData;
    ``train_conditions``: the conditions the classifier learns (ctrl included);
    ``out_folder``: where the ``BertForSequenceClassification`` goes; ``seed``: the
    randomness of initialisation, batches and dropout; ``max_ncells_per_class``: cells
    kept per condition (paper 300); ``freeze_layers``: first encoder layers frozen
    (paper 2); ``epochs``, ``batch_size``, ``lr``: Geneformer's ``Classifier``
    defaults for a 12-layer model (10, 12, 5e-5; AdamW with weight decay 0.001, linear
    decay, no warm-up, the HF Trainer's defaults); ``dictionaries``, ``device``: as in
    :func:`condition_embeddings`. As Geneformer, 1/9 of the cells are held out and the
    epoch with the lowest held-out loss is kept. Returns the run's log.
    """
    from transformers import BertForSequenceClassification

    start = time.perf_counter()
    gf = read_folder(folder, dictionaries=dictionaries)
    cond = _condition_column(adata)
    labels = list(dict.fromkeys(str(c) for c in train_conditions))
    absent = [c for c in labels if c not in set(cond.values)]
    if absent:
        raise InputError(
            f"train condition {absent[0]!r} has no cells in adata; pass conditions "
            "of adata.obs['condition']"
        )
    rng = np.random.default_rng(seed)
    picked = []
    for c in labels:
        idx = np.flatnonzero(cond.values == c)
        picked.append(rng.permutation(idx)[:max_ncells_per_class])
    cells = np.concatenate(picked)
    y = np.concatenate([[k] * len(p) for k, p in enumerate(picked)])
    torch.manual_seed(seed)
    dev = device_for(device)
    with _quiet_transformers():
        model = BertForSequenceClassification.from_pretrained(
            str(folder), num_labels=len(labels)
        )
    max_len = int(model.config.max_position_embeddings)
    sentences = tokenize_adata(adata[cells], gf, model_input_size=max_len)
    for layer in model.bert.encoder.layer[:freeze_layers]:
        for p in layer.parameters():
            p.requires_grad = False
    model.to(dev)
    order = rng.permutation(len(cells))
    n_val = max(1, len(cells) // 9)
    val, train = order[:n_val], order[n_val:]
    decay = [
        p
        for n, p in model.named_parameters()
        if p.requires_grad and not ("bias" in n or "LayerNorm" in n)
    ]
    no_decay = [
        p
        for n, p in model.named_parameters()
        if p.requires_grad and ("bias" in n or "LayerNorm" in n)
    ]
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": 0.001},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=lr,
    )
    n_steps = epochs * math.ceil(len(train) / batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: max(0.0, (n_steps - s) / n_steps)
    )
    log = TrainingLog(device=str(dev), note=f"{MODEL_NAME}: condition classifier")
    pad_id = int(gf.token_dict.get("<pad>", 0))
    best = math.inf
    for epoch in range(epochs):
        model.train()
        losses = []
        for b in range(0, len(train), batch_size):
            idx = train[b : b + batch_size]
            ids, mask = _pad([sentences[i].tolist() for i in idx], pad_id, dev)
            out = model(
                input_ids=ids,
                attention_mask=mask,
                labels=torch.as_tensor(y[idx], device=dev),
            )
            opt.zero_grad()
            out.loss.backward()
            opt.step()
            sched.step()
            losses.append(out.loss.item())
            log.cells_seen += len(idx)
            log.steps += 1
        train = rng.permutation(train)
        log.train_loss.append(float(np.mean(losses)))
        model.eval()
        total = 0.0
        with torch.no_grad():
            for b in range(0, len(val), 100):
                idx = val[b : b + 100]
                ids, mask = _pad([sentences[i].tolist() for i in idx], pad_id, dev)
                out = model(
                    input_ids=ids,
                    attention_mask=mask,
                    labels=torch.as_tensor(y[idx], device=dev),
                )
                total += out.loss.item() * len(idx)
        log.val_loss.append(total / len(val))
        if log.val_loss[-1] < best:
            best, log.best_epoch = log.val_loss[-1], epoch + 1
            with _quiet_transformers():
                model.to("cpu").save_pretrained(out_folder)
            model.to(dev)
    log.seconds, log.peak_rss_gb = time.perf_counter() - start, _peak_rss_gb()
    return log


_fine_tune = fine_tune
