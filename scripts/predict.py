"""Classify texts with a trained classifier: the label and the probability of every class.

    python scripts/predict.py "A wonderful film." "Two hours I will never get back."
    python scripts/predict.py --files review1.txt review2.txt
    cat reviews.txt | python scripts/predict.py --json          # one text per line on stdin
    python scripts/predict.py --model runs/clas-fwd --model runs/clas-bwd "Great."   # ensemble: mean probs

The texts are tokenized as in training, batched by length (the ClasLoader's sorted order, little padding)
and the predictions are put back in the input order (`awdlstm.predict.predict_texts`). Output: one line per
text, `label<TAB>p(class)...<TAB>text` (stderr names the columns), or one JSON object per line with --json.
"""
from __future__ import annotations

import json
import sys
import time

from awdlstm import cli
from awdlstm.predict import load_classifier, predict_texts
from awdlstm.runs import newest_run, resolve_device


def main(argv: list[str] | None = None) -> None:
    ap = cli.OneLineParser(description=__doc__, prog="predict.py")
    ap.add_argument("texts", nargs="*", help="texts to classify (none, and no --files: read stdin, one per line)")
    ap.add_argument("--files", nargs="+", default=None, help="files to classify, each file one text")
    ap.add_argument("--model", action="append", default=None,
                    help="train_classifier.py's run folder (default: the newest runs/clas-*); give it more than "
                         "once to average the models' probabilities (the book's forward + backward ensemble)")
    ap.add_argument("--bs", type=cli.checked(int, "bs", "pos"), default=64, help="batch size")
    ap.add_argument("--json", action="store_true", help="one JSON object per line")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where to run")
    ap.add_argument("--threads", type=cli.checked(int, "threads", "nonneg"), default=0,
                    help="CPU threads for torch (0: torch's default)")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "int8"],
                    help="bf16: a GPU or a CPU with native bf16 (autocast); int8: CPU only, the LSTMs in 8-bit "
                         "integers (awdlstm/quantize.py). Both are faster at full size, not for small models; "
                         "check their agreement with fp32 on your data first (scripts/dev/bench.py clas --model RUN "
                         "--precisions fp32,bf16,int8)")
    args = ap.parse_args(argv)
    device = resolve_device(args.device, args.threads)
    texts = cli.read_inputs(args.texts, args.files)
    t0 = time.time()
    models = [load_classifier(run) for run in (args.model or [newest_run("clas", "classifier.pt")])]
    labels, probs = predict_texts(models, texts, bs=args.bs, device=device, precision=args.precision)
    itos = models[0].labels.itos
    for text, label, p in zip(texts, labels, probs.tolist(), strict=True):
        if args.json:
            print(json.dumps({"label": label, "probs": dict(zip(itos, p, strict=True)), "text": text}))
        else:
            print("\t".join([label, *(f"{v:.4f}" for v in p), " ".join(text.split())[:60]]))
    print(f"{len(texts)} texts, {len(models)} model(s), {time.time() - t0:.2f}s; "
          f"columns: label, p({'), p('.join(itos)}), text", file=sys.stderr)


if __name__ == "__main__":
    cli.main_guard(main)
