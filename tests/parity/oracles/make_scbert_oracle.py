"""Make the scBERT oracle: outputs of the REAL scBERT Performer on tiny seeded weights.

Real code: TencentAILabHealthcare/scBERT at commit
262fd4b91f3f1c21a6e595d03d4ef423e16ffc99, files ``performer_pytorch/__init__.py``,
``performer_pytorch/performer_pytorch.py``, ``performer_pytorch/reversible.py``
(scBERT's own copy of the Performer, not PyPI's ``performer-pytorch``). The embedding
protocol is the paper's ``benchmark/src/attn_sum_save_modified.py``
(const-ae/linear_perturbation_prediction-Paper): reload with ``g2v_position_emb=False``,
``strict=False``, one cell at a time, ``output_attentions=True, return_encodings=True``,
mean over positions, the first 3 cells summed into a zeros(100, dim) matrix averaged
over its 100 rows.

Environment used (throwaway, Python 3.11.7, torch 2.13.0+cpu)::

    /work/main/.venv/bin/python -m venv /tmp/scbert_oracle
    # make the book's venv (torch, numpy) visible, then the Performer's extra imports:
    echo $BOOK_SITE_PACKAGES > /tmp/scbert_oracle/lib/python3.11/site-packages/b.pth
    /tmp/scbert_oracle/bin/pip install --no-deps einops==0.6.0 local-attention==1.4.4
    mkdir -p /tmp/scbert_src/performer_pytorch   # then, for each of the three files:
    git --git-dir=<fetched scBERT>/repo show HEAD:performer_pytorch/<f> \
        > /tmp/scbert_src/performer_pytorch/<f>

Rerun (writes ``tests/data/scbert_oracle/``)::

    /tmp/scbert_oracle/bin/python tests/parity/oracles/make_scbert_oracle.py \
        --scbert-src /tmp/scbert_src --out tests/data/scbert_oracle

Stored: ``panglao_pretrain.pth`` (``{"model_state_dict": ...}`` of the real
``PerformerLM``, gene2vec position embedding on), ``gene2vec_16906.npy`` (the synthetic
table the real constructor read), ``finetune_best.pth`` (the same weights with a
classifier head in place of ``to_out``, as the paper's fine-tuning saves them) and
``oracle.npz`` (tokens, logits, encodings, pooled embedding, random features).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

N_GENES, DIM, DEPTH, HEADS, DIM_HEAD, BINS = 50, 16, 2, 2, 12, 5
SEED = 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scbert-src", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(Path(args.scbert_src).resolve()))
    import torch
    from performer_pytorch import PerformerLM
    from performer_pytorch.performer_pytorch import gaussian_orthogonal_random_matrix

    rng = np.random.default_rng(SEED)
    gene2vec = rng.normal(size=(N_GENES, DIM)).astype(np.float32)
    np.save(out / "gene2vec_16906.npy", gene2vec)
    # the real constructor reads ../data/gene2vec_16906.npy from the working folder
    work = Path(tempfile.mkdtemp())
    (work / "data").mkdir()
    (work / "run").mkdir()
    np.save(work / "data" / "gene2vec_16906.npy", gene2vec)
    os.chdir(work / "run")

    settings = dict(
        num_tokens=BINS + 2,
        dim=DIM,
        depth=DEPTH,
        max_seq_len=N_GENES + 1,
        heads=HEADS,
        dim_head=DIM_HEAD,
        local_attn_heads=0,
    )
    torch.manual_seed(SEED)
    model = PerformerLM(**settings, g2v_position_emb=True)
    # move every weight off its initial value so a mix-up of tensors shows
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "pos_emb" not in name:
                p.add_(0.05 * torch.randn_like(p))
    model.eval()
    torch.save({"model_state_dict": model.state_dict()}, out / "panglao_pretrain.pth")

    # tokens: bins 0..5 (expression bins) and the closing token 0, as scBERT builds them
    tokens = rng.integers(0, BINS + 1, size=(4, N_GENES + 1))
    tokens[:, -1] = 0
    tok = torch.from_numpy(tokens).long()
    with torch.no_grad():
        logits_batch = model(tok).numpy()
        logits_single = np.concatenate(
            [model(tok[i : i + 1]).numpy() for i in range(4)]
        )

    # the paper's fine-tuned checkpoint: to_out replaced by a classifier head
    head = torch.nn.Module()
    head.conv1 = torch.nn.Conv2d(1, 1, (1, DIM))
    head.fc1 = torch.nn.Linear(N_GENES + 1, 8)  # the paper: 512 and 128 units
    head.fc2 = torch.nn.Linear(8, 4)
    head.fc3 = torch.nn.Linear(4, 3)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("to_out")}
    state.update({f"to_out.{k}": v for k, v in head.state_dict().items()})
    torch.save({"model_state_dict": state}, out / "finetune_best.pth")

    # attn_sum_save_modified.py: reload without gene2vec, strict=False, pool 3 of 100
    torch.manual_seed(SEED + 1)
    embedder = PerformerLM(**settings, g2v_position_emb=False)
    ckpt = torch.load(out / "finetune_best.pth")
    embedder.load_state_dict(ckpt["model_state_dict"], strict=False)
    embedder.eval()
    pooled = torch.zeros(100, DIM)
    encodings = []
    with torch.no_grad():
        for i in range(3):
            x, _ = embedder(
                tok[i : i + 1], output_attentions=True, return_encodings=True
            )
            encodings.append(x[0].numpy())
            pooled[i, :] = x.mean(dim=1)
    pooled = pooled.mean(axis=0).numpy()

    # FAVOR+ features: a fresh draw, and the redraw after 3 training calls (interval 2)
    torch.manual_seed(SEED + 2)
    features = gaussian_orthogonal_random_matrix(29, DIM_HEAD).numpy()
    model.train()
    model.performer.feature_redraw_interval = 2
    torch.manual_seed(SEED + 3)
    train_logits = []
    for i in range(3):
        train_logits.append(model(tok[i : i + 1]).detach().numpy())
    redrawn = np.stack(
        [
            model.performer.net.layers[i][0].fn.fast_attention.projection_matrix.numpy()
            for i in range(DEPTH)
        ]
    )
    np.savez_compressed(
        out / "oracle.npz",
        tokens=tokens,
        logits_batch=logits_batch,
        logits_single=logits_single,
        encodings_no_g2v=np.stack(encodings),
        pooled=pooled,
        features_seed2=features,
        redrawn_seed3=redrawn,
        calls_after=np.array(int(model.performer.calls_since_last_redraw)),
        train_logits_seed3=np.concatenate(train_logits),
        torch_version=np.array(torch.__version__),
    )
    print("wrote", sorted(p.name for p in out.iterdir()))


if __name__ == "__main__":
    main()
