"""Make data/samples/movie_reviews_sample.csv: a small, deterministic slice of the embedded corpus.

    PYTHONPATH=. python scripts/make_sample.py [--csv PATH] [--out PATH]   (from the repository root)

300 IMDb reviews (150 negative, 150 positive; in each class 120 training and 30 validation reviews under the
canonical rule `index % 5 == 4`, evenly spaced through the class) and 100 Rotten Tomatoes sentences (50 per
class, evenly spaced). Same columns as the package's CSV (text,label,source) plus `index`: the row's position
among the rows of its source in the full CSV, so the split rule stays testable on the sample.
"""
import argparse
import csv
from pathlib import Path

from awdlstm.data.sources import SAMPLE_CSV, is_imdb_valid, read_movie_reviews
from awdlstm.tokenizers.atomic import atomic_write


def evenly(items: list, k: int) -> list:
    """k items spread evenly over `items` (first one included)."""
    return [items[i * len(items) // k] for i in range(k)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--csv", default=None, help="the full combined_movie_reviews.csv (default: the package's)")
    ap.add_argument("--out", default=str(SAMPLE_CSV))
    args = ap.parse_args()
    rows = read_movie_reviews(args.csv)
    picked = []
    for label in (0, 1):
        imdb = [r for r in rows if r.source == "imdb" and r.label == label]
        picked += evenly([r for r in imdb if not is_imdb_valid(r.index)], 120)
        picked += evenly([r for r in imdb if is_imdb_valid(r.index)], 30)
    for label in (0, 1):
        picked += evenly([r for r in rows if r.source == "rotten_tomatoes" and r.label == label], 50)
    picked.sort(key=lambda r: (r.source != "imdb", r.index))  # file order: IMDb first, then RT
    out = Path(args.out)
    with atomic_write(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label", "source", "index"])
        for r in picked:
            w.writerow([r.text, r.label, r.source, r.index])
    print(f"wrote {len(picked)} rows, {out.stat().st_size:,} bytes to {out}")


if __name__ == "__main__":
    main()
