"""Benchmark the batchers on a synthetic corpus: time to first batch, memory, batches per second.

    PYTHONPATH=. python scripts/bench_loaders.py --tokens 100_000_000 [--bs 64 --seq-len 72]

The corpus is one flat int32 id array plus document offsets (as `awdlstm.tokenizers.corpus.numericalize_all`
returns), documents of 1-500 tokens (mean ~250), ids below 60,000.
"""
import argparse
import resource
import time

import numpy as np

from awdlstm.data import ClasLoader, FastLMLoader


def rss_mib() -> float:
    """Current resident memory of this process in MiB (Linux /proc)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=10_000_000)
    ap.add_argument("--bs", type=int, default=64)
    ap.add_argument("--seq-len", type=int, default=72)
    ap.add_argument("--batches", type=int, default=2000, help="batches to time after the first")
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    lens = rng.integers(1, 501, size=args.tokens // 250 + 1)
    lens = lens[: np.searchsorted(np.cumsum(lens), args.tokens) + 1]
    offsets = np.zeros(len(lens) + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    ids = rng.integers(0, 60_000, size=int(offsets[-1]), dtype=np.int32)
    base = rss_mib()
    print(f"corpus: {len(ids):,} tokens in {len(lens):,} documents ({ids.nbytes / 2**20:,.0f} MiB of ids); "
          f"process RSS {base:,.0f} MiB")

    t0 = time.perf_counter()
    dl = FastLMLoader((ids, offsets), bs=args.bs, seq_len=args.seq_len, shuffle=True, seed=0)
    it = iter(dl)
    x, y = next(it)
    first = time.perf_counter() - t0
    print(f"FastLMLoader: {len(dl):,} batches/epoch of {tuple(x.shape)}; first batch after {first * 1000:.1f} ms; "
          f"RSS +{rss_mib() - base:,.1f} MiB over the corpus")
    n = min(args.batches, len(dl) - 1)
    t0 = time.perf_counter()
    for _ in range(n):
        next(it)
    dt = time.perf_counter() - t0
    print(f"FastLMLoader: {n / dt:,.0f} batches/s ({n * args.bs * args.seq_len / dt / 1e6:,.1f} M tokens/s)")

    n_docs = min(len(lens), 25_000)
    sub_offsets = offsets[: n_docs + 1]
    cl = ClasLoader((ids[: sub_offsets[-1]], sub_offsets), [0] * n_docs, bs=args.bs, shuffle=True, seed=0)
    t0 = time.perf_counter()
    k = sum(1 for _ in cl)
    dt = time.perf_counter() - t0
    print(f"ClasLoader: {n_docs:,} documents, {k} batches in {dt:.2f} s ({k / dt:,.0f} batches/s, "
          f"epoch order included)")


if __name__ == "__main__":
    main()
