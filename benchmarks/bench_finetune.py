"""Benchmark: fine-tuning throughput (cells per second) of the scGPT-compatible model.

Synthetic cells (log-normalised, 1,000 genes) and two configurations: the quick profile's tiny model and a
mid-size one (d = 128, 4 layers). Prints cells/s of training (forward + backward) and of prediction, on the
CPU (and on a GPU if one is present). The released scGPT_human (d = 512, 12 layers) is ~50x the mid-size
model's compute per token.

    python benchmarks/bench_finetune.py [--genes 1000] [--seq 256] [--batch 64]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from helpers.models import scgpt, training


def measure(config, data, seq, batch, device, steps=5):
    model = scgpt.ScGPTPerturbationModel(config, pad_id=data.token_ids.max() + 1).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-4)
    rng = np.random.default_rng(0)
    genes = np.sort(rng.choice(len(data.genes), size=min(seq, len(data.genes)), replace=False))
    flags = np.zeros((batch, len(data.tokens)), np.int64)
    ids, values, flag_t = training._batch_tensors(data, data.X[:batch], flags, device, genes)
    target = torch.as_tensor(data.X[:batch][:, genes], device=device)
    for phase in ("warm-up", "train"):
        start = time.perf_counter()
        for _ in range(1 if phase == "warm-up" else steps):
            loss = torch.nn.functional.mse_loss(model(ids, values, flag_t)[:, :len(genes)], target)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
    train = steps * batch / (time.perf_counter() - start)
    with torch.no_grad():
        start = time.perf_counter()
        for _ in range(steps):
            model(ids, values, flag_t)
        if device.type == "cuda":
            torch.cuda.synchronize()
    infer = steps * batch / (time.perf_counter() - start)
    return train, infer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--genes", type=int, default=1000)
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    genes = [f"G{i}" for i in range(args.genes)]
    vocab = training.build_vocab(genes)
    data = training.CellData(X=np.log1p(rng.poisson(1.0, (args.batch, args.genes))).astype(np.float32),
                             conditions=np.array(["ctrl"] * args.batch), genes=genes, flag_genes=[],
                             token_ids=np.array([vocab[g] for g in genes]))
    configs = {"tiny (d=32, 2 layers)": training.tiny_config(len(vocab)),
               "mid (d=128, 4 layers)": training.tiny_config(len(vocab), embsize=128, nheads=4, d_hid=256, nlayers=4)}
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    print(f"scGPT-compatible model, batch {args.batch} x {args.seq} gene tokens, {torch.get_num_threads()} CPU threads; SYNTHETIC cells")
    for device in devices:
        for name, config in configs.items():
            train, infer = measure(config, data, args.seq, args.batch, device)
            print(f"  {device.type:<5} {name:<24} train {train:8.1f} cells/s   predict {infer:9.1f} cells/s")


if __name__ == "__main__":
    main()
