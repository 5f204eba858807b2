"""Classify texts with a trained classifier: the label and the probability of every class.

    python scripts/predict.py "A wonderful film." "Two hours I will never get back."
    python scripts/predict.py --files review1.txt review2.txt
    cat reviews.txt | python scripts/predict.py --json          # one text per line on stdin
    python scripts/predict.py --lines reviews.txt > preds.tsv   # one text per line, any number of lines
    python scripts/predict.py --model runs/clas-fwd --model runs/clas-bwd "Great."   # ensemble: mean probs
    python scripts/predict.py --model runs/ulmfit-X/clas-fwd --model runs/ulmfit-X/bow "Great."  # + bag-of-words

The texts are read, tokenized and classified --block texts at a time, so memory does not grow with the
input; inside a block they are batched by length (the ClasLoader's sorted order, little padding) and the
predictions are put back in the input order (`awdlstm.predict_stream.write_predictions`). Output: one line
per text, `label<TAB>p(class)...<TAB>text` (stderr names the columns), or one JSON object per line with
--json; each block's lines are written whole and flushed, so an interrupted run leaves complete lines only.
A progress bar on stderr (when it is a terminal) counts the texts.
"""
from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path

from awdlstm import cli
from awdlstm.bow import load_member
from awdlstm.predict_stream import BLOCK, read_lines, write_predictions
from awdlstm.runs import newest_run, resolve_device


def main(argv: list[str] | None = None) -> None:
    ap = cli.OneLineParser(description=__doc__, prog="predict.py")
    ap.add_argument("texts", nargs="*", help="texts to classify (none, and no --files: read stdin, one per line)")
    ap.add_argument("--files", nargs="+", default=None, help="files to classify, each file one text")
    ap.add_argument("--lines", default=None, metavar="FILE",
                    help="a file with one text per line (blank lines skipped), read as it is classified")
    ap.add_argument("--block", type=cli.checked(int, "block", "pos"), default=BLOCK,
                    help="texts read, tokenized and classified at a time (memory grows with it, not the input)")
    ap.add_argument("--model", action="append", default=None,
                    help="train_classifier.py's run folder (default: the newest runs/clas-*); give it more than "
                         "once to average the models' probabilities, equal weights (the book's forward + backward "
                         "ensemble); a bag-of-words run folder (baseline.py, ulmfit.py's bow/) joins as a member")
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
    if args.lines and (args.texts or args.files):
        ap.error("--lines reads the texts from a file: give no texts or --files with it")
    t0 = time.time()
    models = [load_member(run) for run in (args.model or [newest_run("clas", "classifier.pt")])]
    with _texts(args) as texts:
        n = write_predictions(models, texts, sys.stdout, as_json=args.json, block=args.block, bs=args.bs,
                              device=device, precision=args.precision, n_workers=args.threads or None)
    print(f"{n} texts, {len(models)} model(s), {time.time() - t0:.2f}s; "
          f"columns: label, p({'), p('.join(models[0].labels.itos)}), text", file=sys.stderr)


@contextlib.contextmanager
def _texts(args):
    """The texts: the arguments and --files (each one text), else --lines FILE or stdin (one per line, lazily)."""
    if args.texts or args.files:
        yield cli.read_inputs(args.texts, args.files)
    elif args.lines:
        if not Path(args.lines).is_file():
            raise FileNotFoundError(f"--lines {args.lines} does not exist")
        with open(args.lines, "rb") as f:
            yield read_lines(f, f"--lines {args.lines}")
    else:
        yield read_lines(getattr(sys.stdin, "buffer", sys.stdin))


if __name__ == "__main__":
    cli.main_guard(main)
