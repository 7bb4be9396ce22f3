"""Benchmark: fine-tuning and prediction speed of scGPT's perturbation model (0.2.1).

SYNTHETIC cells (log-normalised Poisson counts), three sizes:

* tiny (d = 32, 2 layers): the quick profile's model, 256 gene tokens;
* mid (d = 128, 4 layers), 256 gene tokens;
* scGPT_human size (d = 512, 8 heads, d_hid 512, 12 layers, vocabulary 60,697) with
  1,536 gene tokens per cell, the benchmark's fine-tuning length; only a couple of
  steps, batch 2, so it fits a shared CPU.

Reported per size: training cells/s (forward + backward + Adam step), prediction cells/s
with an all-False padding mask (what scGPT passes) and without a mask (what the book
does when nothing is padded), the speed-up and the largest output difference between the
two. On a CUDA device, the same with mixed precision (``torch.autocast`` fp16 +
GradScaler, as :func:`helpers.models.scgpt.fine_tune` does on a GPU).

    python benchmarks/bench_finetune.py [--sizes tiny,mid,human] [--threads N]
    python benchmarks/bench_finetune.py --small   # seconds: tiny size, 300 genes
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time

import numpy as np
import torch

from helpers.models import scgpt

HUMAN_VOCAB = 60_697  # scGPT_human: 60,694 genes + <pad>, <cls>, <eoc>


def sizes(n_genes: int) -> dict:
    ntoken = n_genes + 3
    return {
        "tiny": dict(
            config=scgpt.tiny_config(ntoken), seq=256, batch=64, steps=5, repeats=3
        ),
        "mid": dict(
            config=scgpt.tiny_config(
                ntoken, embsize=128, nheads=4, d_hid=256, nlayers=4
            ),
            seq=256,
            batch=64,
            steps=3,
            repeats=3,
        ),
        "human": dict(
            config=scgpt.ScGPTConfig(
                ntoken=HUMAN_VOCAB,
                embsize=512,
                nheads=8,
                d_hid=512,
                nlayers=12,
                dropout=0.2,
            ),
            seq=1536,
            batch=2,
            steps=1,
            repeats=1,
        ),
    }


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(config, seq, batch, steps, repeats, device, amp=False, seed=0):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    n_tokens = config.ntoken - 3
    model = scgpt.ScGPTPerturbationModel(config, pad_id=n_tokens).to(device)
    ids = torch.as_tensor(
        np.sort(rng.choice(n_tokens, size=seq, replace=False)), device=device
    ).expand(batch, seq)
    values = torch.as_tensor(
        np.log1p(rng.poisson(1.0, (batch, seq))), dtype=torch.float32, device=device
    )
    flags = torch.zeros(batch, seq, dtype=torch.long, device=device)
    flags[:, 0] = 1
    target = torch.as_tensor(
        np.log1p(rng.poisson(1.0, (batch, seq))), dtype=torch.float32, device=device
    )
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler(device.type, enabled=amp)
    model.train()

    def step():
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=amp):
            loss = torch.nn.functional.mse_loss(
                model(ids, values, flags).float(), target
            )
        optimiser.zero_grad()
        scaler.scale(loss).backward()
        scaler.unscale_(optimiser)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(optimiser)
        scaler.update()

    if steps > 1:
        step()  # warm-up (allocations); the human-size run skips it to stay short
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    train = steps * batch / (time.perf_counter() - start)

    model.eval()
    outputs, times = {}, {True: [], False: []}
    with (
        torch.no_grad(),
        torch.autocast(device_type=device.type, dtype=torch.float16, enabled=amp),
    ):
        for _ in range(repeats):
            for masked in (True, False):
                _sync(device)
                start = time.perf_counter()
                outputs[masked] = model(ids, values, flags, always_mask=masked).float()
                _sync(device)
                times[masked].append(time.perf_counter() - start)
    infer = {m: batch / statistics.median(t) for m, t in times.items()}
    diff = float((outputs[True] - outputs[False]).abs().max())
    return train, infer[True], infer[False], diff


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="tiny,mid,human")
    parser.add_argument(
        "--genes", type=int, default=1000, help="vocabulary of the tiny and mid models"
    )
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--small",
        action="store_true",
        help="quick check that it runs: tiny size, 300 genes, batch 8, 2 steps",
    )
    args = parser.parse_args()
    if args.small:
        args.sizes, args.genes = "tiny", 300
        print(
            "SMALL MODE (--small): the tiny size only; the figures say nothing "
            "about the targets"
        )
    if args.threads:
        torch.set_num_threads(args.threads)
    table = sizes(args.genes)
    if args.small:  # a few cells and steps: every code path runs, nothing about speed
        table["tiny"].update(batch=8, steps=2, repeats=1)
    chosen = [s.strip() for s in args.sizes.split(",")]
    print(
        "scGPT perturbation architecture (version 0.2.1: BatchNorm + "
        "ExprDecoder); SYNTHETIC cells; "
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads of "
        f"{os.cpu_count()} cores; "
        f"load average at start {os.getloadavg()[0]:.1f} (CPU shared with other "
        "jobs inflates times)"
    )
    runs = [(torch.device("cpu"), False)]
    if torch.cuda.is_available():
        runs.append((torch.device("cuda"), True))
        print(
            f"CUDA: {torch.cuda.get_device_name(0)}; GPU rows use mixed "
            "precision (fp16 autocast + GradScaler)"
        )
    else:
        print(
            "CUDA: not available on this machine (no GPU), so the GPU / "
            "mixed-precision path did not run here"
        )
    print(
        f"{'device':<6} {'size':<6} {'batch x tokens':>14} {'train cells/s':>14} "
        f"{'predict, mask':>14} "
        f"{'predict, none':>14} {'speed-up':>9} {'max |diff|':>11}"
    )
    for device, amp in runs:
        for name in chosen:
            spec = table[name]
            train, masked, unmasked, diff = measure(
                spec["config"],
                spec["seq"],
                spec["batch"],
                spec["steps"],
                spec["repeats"],
                device,
                amp,
            )
            label = f"{device.type}{'+amp' if amp else ''}"
            print(
                f"{label:<6} {name:<6} {spec['batch']:>6} x {spec['seq']:<5} "
                f"{train:>14.3g} {masked:>14.3g} "
                f"{unmasked:>14.3g} {unmasked / masked:>8.2f}x {diff:>11.1e}",
                flush=True,
            )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(
        f"load average at the end {os.getloadavg()[0]:.1f}; peak RSS {rss:.1f} "
        f"GB. Training runs {sizes(1)['tiny']['steps']} / "
        f"{sizes(1)['mid']['steps']} / "
        f"{sizes(1)['human']['steps']} timed steps (tiny / mid / human, the last "
        "without warm-up); prediction: "
        "median of 3 / 3 / 1 calls. 'mask' = an all-False padding mask passed to "
        "the transformer (scGPT's "
        "call), 'none' = no mask (the book's model when no token is padded)."
    )


if __name__ == "__main__":
    main()
