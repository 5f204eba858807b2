"""The classical baseline beside ULMFiT: NB-weighted logistic regression on word n-grams (Wang & Manning 2012).

    python scripts/baseline.py                       # 1-3 grams, the embedded IMDb reviews, canonical split
    python scripts/baseline.py --ngrams 2 --l2 3e-5

The same tokens (fastai's rules + the spaCy-equivalent words, cached) and the same split (20,000 training /
5,000 validation reviews) as train_classifier.py; prints the validation accuracy and the time it took.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from awdlstm.baseline import NBLogistic, ngram_features, rows
from data import imdb_embedded, read_csv
from data.download import get_cache_dir
from tokenizers.corpus import select_docs, tokenize_corpus


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="baseline.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ngrams", type=int, default=3, help="use 1..NGRAMS-grams")
    ap.add_argument("--min-df", type=int, default=1, help="keep n-grams found in at least this many training docs")
    ap.add_argument("--alpha", type=float, default=1.0, help="smoothing of the NB log-count ratios")
    ap.add_argument("--l2", type=float, default=1e-5, help="L2 penalty (on the mean log loss)")
    ap.add_argument("--max-iter", type=int, default=100, help="L-BFGS iterations")
    ap.add_argument("--max-tokens", type=int, default=0,
                    help="read only the first MAX_TOKENS tokens of each review (negative: the last ones; 0 = all)")
    ap.add_argument("--csv", default=None, help="CSV file with text, label and a validation column instead")
    ap.add_argument("--valid-col", default="is_valid", help="with --csv: the column marking validation rows")
    ap.add_argument("--cache-dir", default=None, help="tokenized-corpus cache (default: ~/.cache/awdlstm/tokens)")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: torch's default)")
    args = ap.parse_args(argv)
    if args.ngrams < 1 or args.min_df < 1 or args.alpha <= 0 or args.l2 < 0 or args.max_iter < 1:
        ap.error("--ngrams, --min-df and --max-iter must be >= 1, --alpha > 0, --l2 >= 0")
    return args


def main(argv: list[str] | None = None) -> float:
    args = parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    t0 = time.time()
    texts = read_csv(args.csv, valid_col=args.valid_col) if args.csv else imdb_embedded()
    if texts.is_valid is None or texts.labels is None:
        raise ValueError(f"{args.csv}: needs labels and a validation column")
    cache = Path(args.cache_dir) if args.cache_dir else get_cache_dir() / "tokens"
    cache.mkdir(parents=True, exist_ok=True)
    corpus = tokenize_corpus(texts.texts, cache_dir=cache)
    t1 = time.time()
    ids, offsets = select_docs(corpus.ids, corpus.offsets, np.arange(len(corpus)), args.max_tokens)
    is_valid = np.asarray(texts.is_valid, dtype=bool)
    train, valid = np.flatnonzero(~is_valid), np.flatnonzero(is_valid)
    classes = sorted(set(texts.labels))
    if len(classes) != 2 or len(train) == 0 or len(valid) == 0:
        raise ValueError(f"needs two labels and both splits, got labels {classes}, {len(train)} train, "
                         f"{len(valid)} valid documents")
    y = torch.tensor([classes.index(lab) for lab in texts.labels])
    feats = ngram_features(ids, offsets, args.ngrams, train, args.min_df)
    t2 = time.time()
    model = NBLogistic.fit(rows(feats.x, train), y[train], args.alpha, args.l2, args.max_iter)
    pred = (model.predict_proba(rows(feats.x, valid)) > 0.5).long()
    acc = (pred == y[valid]).float().mean().item()
    t3 = time.time()
    print(f"NB-weighted logistic regression, 1-{args.ngrams} grams ({feats.n_features:,} features), "
          f"{len(train):,} train / {len(valid):,} valid documents")
    print(f"validation accuracy: {acc:.4f}  ({t3 - t0:.1f}s in all: tokens {t1 - t0:.1f}s, "
          f"features {t2 - t1:.1f}s, fit + predict {t3 - t2:.1f}s)")
    return acc


if __name__ == "__main__":
    try:
        main()
    except (OSError, ValueError) as e:
        print(f"baseline.py: error: {e}", file=sys.stderr)
        sys.exit(1)
