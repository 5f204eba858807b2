"""Benchmarks, measured on the machine that runs them. Prints a short table, and with --json one JSON object
on its last line.

    python scripts/bench.py tokenize [--json] [--limit N]

tokenize: the embedded corpus (25,000 IMDb reviews + 8,530 Rotten Tomatoes sentences) through the whole
word pipeline (fastai's rules, the spaCy-equivalent word tokenizer, replace_space), with one process and
with all cores, no cache. For scale: fastai 2.8 with spaCy 3.8 takes ~44 s for these texts on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import time

from data.sources import read_movie_reviews
from tokenizers.corpus import available_cores, tokenize_corpus


def bench_tokenize(args: argparse.Namespace) -> dict:
    """docs/s and MB/s of the word pipeline on the embedded corpus, one process and all cores."""
    texts = [r.text for r in read_movie_reviews(args.csv)][: args.limit]
    mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    result = {"bench": "tokenize", "docs": len(texts), "MB": round(mb, 2), "cores": available_cores()}
    for name, workers in (("1 process", 1), (f"{available_cores()} processes", available_cores())):
        start = time.perf_counter()
        corpus = tokenize_corpus(texts, n_workers=workers, progress=False)
        secs = time.perf_counter() - start
        key = "one_process" if workers == 1 else "all_cores"
        result[key] = {"seconds": round(secs, 3), "docs_per_s": round(len(texts) / secs, 1),
                       "MB_per_s": round(mb / secs, 2), "tokens": int(len(corpus.ids))}
        print(f"{name:>12}: {secs:7.2f} s  {len(texts) / secs:9.1f} docs/s  {mb / secs:6.2f} MB/s  "
              f"{len(corpus.ids):,} tokens")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="bench", required=True)
    tok = sub.add_parser("tokenize", help="word tokenization throughput on the embedded corpus")
    tok.add_argument("--csv", default=None, help="corpus CSV (default: the movie-reviews package's)")
    tok.add_argument("--limit", type=int, default=None, help="only the first N texts")
    for p in (tok,):
        p.add_argument("--json", action="store_true", help="print one JSON object on the last line")
    args = parser.parse_args()
    result = {"tokenize": bench_tokenize}[args.bench](args)
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
