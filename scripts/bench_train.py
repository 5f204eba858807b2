"""Training-loop measurements (not a test): step time fp32 vs bf16 autocast, thread counts, bf16 perplexity.

    python scripts/bench_train.py [--threads 1 2] [--steps 12] [--force-bf16]

A small LanguageModel (emb 64, hid 256, 2 layers, vocab 2000, bs 32, sl 72) on random tokens. bf16 is only
timed where the CPU has native bf16 (or with --force-bf16: emulated bf16 is very slow).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import time

import torch

from awdlstm.model import LanguageModel, lm_config
from awdlstm.precision import Precision, cpu_has_fast_bf16
from awdlstm.train import Learner, TrainConfig


def random_batches(n: int, vocab: int, bs: int, sl: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randint(0, vocab, (bs, sl), generator=g), torch.randint(0, vocab, (bs, sl), generator=g))
            for _ in range(n)]


def markov_batches(n: int, vocab: int = 64, bs: int = 16, sl: int = 20, seed: int = 0):
    """A noisy first-order chain `next = (5*cur + noise) % vocab`: learnable, for a perplexity comparison."""
    g = torch.Generator().manual_seed(seed)
    cur = torch.randint(0, vocab, (bs,), generator=g)
    seq = [cur]
    for _ in range(n * sl):
        cur = (5 * cur + torch.randint(0, 3, (bs,), generator=g)) % vocab
        seq.append(cur)
    s = torch.stack(seq, 1)
    return [(s[:, i * sl:(i + 1) * sl], s[:, i * sl + 1:(i + 1) * sl + 1]) for i in range(n)]


def learner(model, train, valid, precision: str) -> Learner:
    learn = Learner(model, train, valid, cfg=TrainConfig(progress=False, precision="fp32", seed=0))
    if precision == "bf16":  # bypass the 'no native bf16' guard on purpose, to measure it
        learn.precision = Precision("bf16", "cpu", torch.bfloat16, False)
    return learn


def step_ms(threads: int, precision: str, steps: int) -> float:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    batches = random_batches(6, 2000, 32, 72)
    learn = learner(LanguageModel(2000, lm_config(emb_sz=64, n_hid=256, n_layers=2)), batches, None, precision)
    learn.opt.set_hyper("lr", 1e-3)
    learn.model.train()
    learn.model.reset()
    for x, y in batches[:2]:  # warm-up
        learn.train_batch(x, y)
    start = time.perf_counter()
    for i in range(steps):
        learn.train_batch(*batches[i % len(batches)])
    return (time.perf_counter() - start) / steps * 1e3


def perplexity(precision: str) -> list[float]:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    lm = LanguageModel(64, lm_config(emb_sz=32, n_hid=64, n_layers=2, drop_mult=0.3))
    learn = learner(lm, markov_batches(20), markov_batches(5, seed=1), precision)
    with contextlib.redirect_stdout(io.StringIO()):
        return [r["perplexity"] for r in learn.fit_one_cycle(4, 1e-2)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--force-bf16", action="store_true")
    args = ap.parse_args()
    bf16 = cpu_has_fast_bf16() or args.force_bf16
    print(f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}, "
          f"native bf16: {cpu_has_fast_bf16()}")
    for threads in args.threads:
        print(f"fp32 threads={threads}: {step_ms(threads, 'fp32', args.steps):.1f} ms/step")
        if bf16:
            print(f"bf16 threads={threads}: {step_ms(threads, 'bf16', max(2, args.steps // 4)):.1f} ms/step")
    print("valid perplexity per epoch, fp32:", [round(p, 4) for p in perplexity("fp32")])
    if bf16:
        print("valid perplexity per epoch, bf16:", [round(p, 4) for p in perplexity("bf16")])


if __name__ == "__main__":
    main()
