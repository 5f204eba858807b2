"""Which words drove the classifier's prediction: intrinsic attention written as an HTML page (fastai's
`intrinsic_attention`, beyond the book: chapter 10 classifies, this shows why).

    python scripts/interpret.py "A wonderful film." "Two hours I will never get back."
    python scripts/interpret.py --files review1.txt --model runs/clas-20261125-221500 --out review1.html
    cat reviews.txt | python scripts/interpret.py            # one text per line on stdin

For each text: the predicted label, the probabilities, and every token shaded by how much the predicted
label's probability depends on the token's embedding (fastai's intrinsic attention, awdlstm/interpret.py).
The texts are tokenized and cut to the classifier's max_tokens as in training. Writes one self-contained
HTML file (default: interpretation.html in the model's run folder) and prints its path.
"""
from __future__ import annotations

import time
from pathlib import Path

from awdlstm import cli
from awdlstm.interpret import interpret_texts, write_attention_html
from awdlstm.predict import load_classifier
from awdlstm.runs import newest_run, resolve_device


def main(argv: list[str] | None = None) -> None:
    ap = cli.OneLineParser(description=__doc__, prog="interpret.py")
    ap.add_argument("texts", nargs="*", help="texts to interpret (none, and no --files: read stdin, one per line)")
    ap.add_argument("--files", nargs="+", default=None, help="files to interpret, each file one text")
    ap.add_argument("--model", default=None, help="train_classifier.py's run folder (default: the newest runs/clas-*)")
    ap.add_argument("--out", default=None, help="the HTML file to write (default: MODEL/interpretation.html)")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where to run")
    ap.add_argument("--threads", type=cli.checked(int, "threads", "nonneg"), default=0,
                    help="CPU threads for torch (0: torch's default)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    device = resolve_device(args.device, args.threads)
    run = Path(args.model) if args.model else newest_run("clas", "classifier.pt")
    texts = cli.read_inputs(args.texts, args.files)
    t0 = time.time()
    items = interpret_texts(load_classifier(run), texts, device, progress=not args.quiet)
    out = Path(args.out) if args.out else run / "interpretation.html"
    write_attention_html(out, items, title=f"Intrinsic attention: {run.name}")
    for it in items:
        top = sorted(zip(it.attention, it.tokens, strict=True), reverse=True)[:5]
        print(f"{it.label}\t{it.probs[it.label]:.4f}\ttop tokens: {' '.join(t for _, t in top)}")
    print(f"wrote {out} ({len(items)} texts, {time.time() - t0:.2f}s)")


if __name__ == "__main__":
    cli.main_guard(main)
