"""bench.py tokenize: docs/s and MB/s of the word pipeline on the embedded corpus (25,000 IMDb reviews + 8,530
Rotten Tomatoes sentences: fastai's rules, the spaCy-equivalent word tokenizer, replace_space), with one
process and with all cores, each timed run in a fresh interpreter (`bench.py tokenize --run-workers N`), no
cache. Imported by bench.py as a sibling module.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from awdlstm.data.sources import read_movie_reviews
from awdlstm.tokenizers.corpus import available_cores, tokenize_corpus

BENCH = Path(__file__).with_name("bench.py")


def _time_tokenize(args: argparse.Namespace) -> dict:
    """One timed run (in the interpreter that the parent started for it)."""
    texts = [r.text for r in read_movie_reviews(args.csv)][: args.limit]
    start = time.perf_counter()
    corpus = tokenize_corpus(texts, n_workers=args.run_workers, progress=False)
    return {"seconds": time.perf_counter() - start, "tokens": int(len(corpus.ids))}


def bench_tokenize(args: argparse.Namespace) -> dict:
    """docs/s and MB/s of the word pipeline on the embedded corpus, one process and all cores.

    Each run starts in a fresh interpreter, so no run profits from the caches another one filled.
    """
    if args.run_workers:
        return _time_tokenize(args)
    texts = [r.text for r in read_movie_reviews(args.csv)][: args.limit]
    mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    cores = available_cores()
    result = {"bench": "tokenize", "docs": len(texts), "MB": round(mb, 2), "cores": cores}
    for key, workers in (("one_process", 1), ("all_cores", cores)):
        cmd = [sys.executable, str(BENCH), "tokenize", "--json", "--run-workers", str(workers)]
        cmd += (["--csv", args.csv] if args.csv else []) + (["--limit", str(args.limit)] if args.limit else [])
        run = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
        secs, n_tokens = run["seconds"], run["tokens"]
        result[key] = {"processes": workers, "seconds": round(secs, 3), "docs_per_s": round(len(texts) / secs, 1),
                       "MB_per_s": round(mb / secs, 2), "tokens": n_tokens}
        print(f"{workers:2d} process(es): {secs:7.2f} s  {len(texts) / secs:9.1f} docs/s  {mb / secs:6.2f} MB/s  "
              f"{n_tokens:,} tokens")
    return result
