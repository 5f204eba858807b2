"""The forward + backward ensemble on the validation split: each classifier's accuracy and their mean's.

    python scripts/finetune_lm.py --run-dir runs/lm-fwd && python scripts/train_classifier.py --encoder runs/lm-fwd --run-dir runs/clas-fwd
    python scripts/finetune_lm.py --backwards --run-dir runs/lm-bwd && python scripts/train_classifier.py --encoder runs/lm-bwd --run-dir runs/clas-bwd
    python scripts/ensemble.py runs/clas-fwd runs/clas-bwd

Every train_classifier run writes its validation predictions (`valid_preds.json`); the ensemble is the mean
of the runs' probabilities, as the book's `(preds_fwd + preds_bwd) / 2` (`awdlstm.predict.ensemble_accuracy`).
To classify new texts with the ensemble: `predict.py --model runs/clas-fwd --model runs/clas-bwd TEXT`.
"""
from __future__ import annotations

import json

from awdlstm import cli
from awdlstm.predict import ensemble_accuracy


def main(argv: list[str] | None = None) -> None:
    ap = cli.OneLineParser(description=__doc__, prog="ensemble.py")
    ap.add_argument("runs", nargs="+", help="train_classifier.py's run folders")
    ap.add_argument("--json", action="store_true", help="print the accuracies as one JSON object")
    args = ap.parse_args(argv)
    res = ensemble_accuracy(args.runs)
    if args.json:
        print(json.dumps(res))
        return
    for run, acc in res["each"].items():
        print(f"{acc:.4f}  {run}")
    print(f"{res['ensemble']:.4f}  the ensemble (mean probabilities of {len(args.runs)} models, "
          f"{res['n_valid']} validation documents)")


if __name__ == "__main__":
    cli.main_guard(main)
