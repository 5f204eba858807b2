"""The classical baseline beside ULMFiT: NB-weighted logistic regression on word n-grams (Wang & Manning 2012).

    python scripts/baseline.py                       # 1-3 grams, the embedded IMDb reviews, canonical split
    python scripts/baseline.py --ngrams 2 --l2 3e-5

The same tokens (fastai's rules + the spaCy-equivalent words, cached) and the same split (20,000 training /
5,000 validation reviews) as train_classifier.py; prints the validation accuracy and the time it took, and
writes a run folder like a classifier's, an ensemble member (`awdlstm.bow.train_bow`).
"""
from __future__ import annotations

import time

import numpy as np

from awdlstm import cli
from awdlstm.bow import train_bow
from awdlstm.data.text_source import TextSource
from awdlstm.runs import read_config, resolve_device
from awdlstm.ulmfit import tokenize_texts


def main(argv: list[str] | None = None) -> float:
    ap = cli.OneLineParser(prog="baseline.py", description=__doc__)
    ap.add_argument("--ngrams", type=cli.checked(int, "ngrams", "pos"), default=3, help="use 1..NGRAMS-grams")
    ap.add_argument("--min-df", type=cli.checked(int, "min_df", "pos"), default=1,
                    help="keep n-grams found in at least this many training docs")
    ap.add_argument("--alpha", type=cli.checked(float, "alpha", "pos"), default=1.0,
                    help="smoothing of the NB log-count ratios")
    ap.add_argument("--l2", type=cli.checked(float, "l2", "nonneg"), default=1e-5,
                    help="L2 penalty (on the mean log loss)")
    ap.add_argument("--max-iter", type=cli.checked(int, "max_iter", "pos"), default=100, help="L-BFGS iterations")
    ap.add_argument("--max-tokens", type=int, default=0,
                    help="read only the first MAX_TOKENS tokens of each review (negative: the last ones; 0 = all)")
    ap.add_argument("--csv", default=None, help="CSV file with text, label and a validation column instead")
    ap.add_argument("--valid-col", default="is_valid", help="with --csv: the column marking validation rows")
    ap.add_argument("--cache-dir", default=None, help="tokenized-corpus cache (default: ~/.cache/awdlstm/tokens)")
    ap.add_argument("--run-dir", default=None, help="run folder (default: runs/bow-<date>-<time>)")
    ap.add_argument("--threads", type=cli.checked(int, "threads", "nonneg"), default=0,
                    help="CPU threads for torch (0: torch's default)")
    args = ap.parse_args(argv)
    resolve_device("cpu", args.threads)
    t0 = time.time()
    source = TextSource("csv", args.csv, valid_col=args.valid_col) if args.csv else TextSource()
    texts = source.read(labelled=True)
    if texts.is_valid is None:
        raise ValueError(f"{source.describe()}: needs a validation column (--valid-col)")
    corpus = tokenize_texts(texts.texts, args.cache_dir, progress=False)
    flags = np.asarray(texts.is_valid, dtype=bool)
    r = train_bow(texts, corpus, np.flatnonzero(~flags), np.flatnonzero(flags), args.run_dir, ngrams=args.ngrams,
                  min_df=args.min_df, alpha=args.alpha, l2=args.l2, max_iter=args.max_iter,
                  max_tokens=args.max_tokens, settings={"source": vars(source)})
    res = read_config(r.run_dir)["results"]
    print(f"NB-weighted logistic regression, 1-{args.ngrams} grams ({res['n_features']:,} features), "
          f"{res['n_train']:,} train / {res['n_valid']:,} valid documents")
    print(f"validation accuracy: {r.accuracy:.4f}  ({time.time() - t0:.1f}s in all)")
    print(f"saved {r.run_dir} (bow.npz, bow.json, labels.json, valid_preds.json: an ensemble member for "
          "scripts/ensemble.py)")
    return r.accuracy


if __name__ == "__main__":
    cli.main_guard(main)
