"""Which words drove the classifier's prediction: intrinsic attention written as an HTML page (chapter 10).

    python scripts/interpret.py "A wonderful film." "Two hours I will never get back."
    python scripts/interpret.py --files review1.txt --model runs/clas-20261125-221500 --out review1.html
    cat reviews.txt | python scripts/interpret.py            # one text per line on stdin

For each text: the predicted label, the probabilities, and every token shaded by how much the predicted
label's probability depends on the token's embedding (fastai's intrinsic attention, awdlstm/interpret.py).
The texts are tokenized and cut to the classifier's max_tokens as in training. Writes one self-contained
HTML file (default: interpretation.html in the model's run folder) and prints its path.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

import pipeline as P
from awdlstm.interpret import Interpretation, intrinsic_attention, write_attention_html
from predict import load_classifier, read_inputs
from tokenizers.corpus import tokenize_corpus


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = P.OneLineParser(description=__doc__, prog="interpret.py")
    ap.add_argument("texts", nargs="*", help="texts to interpret (none, and no --files: read stdin, one per line)")
    ap.add_argument("--files", nargs="+", default=None, help="files to interpret, each file one text")
    ap.add_argument("--model", default=None, help="train_classifier.py's run folder (default: the newest runs/clas-*)")
    ap.add_argument("--out", default=None, help="the HTML file to write (default: MODEL/interpretation.html)")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where to run")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: torch's default)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    return ap.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    device = P.resolve_device(args.device, args.threads)
    run = Path(args.model) if args.model else P.newest_run("clas", "classifier.pt")
    texts = read_inputs(args)
    t0 = time.time()
    model, vocab, labels, config = load_classifier(run)
    model.to(device)
    max_tokens = config.get("recipe", {}).get("max_tokens", 0)  # cut as in training
    corpus = tokenize_corpus(texts, progress=False).subset(np.arange(len(texts)), max_tokens)
    items = []
    for i, text in enumerate(tqdm(texts, desc="attention", disable=args.quiet or len(texts) < 2)):
        tokens = corpus[i]  # shown as written; the model reads words outside its vocab as xxunk
        if not tokens:
            raise ValueError(f"text {i + 1} has no tokens")
        probs, attn = intrinsic_attention(model, vocab.encode(tokens), backwards=bool(config.get("backwards")))
        items.append(Interpretation(text, tokens, attn.tolist(), dict(zip(labels.itos, probs.tolist(), strict=True))))
    out = Path(args.out) if args.out else Path(run) / "interpretation.html"
    write_attention_html(out, items, title=f"Intrinsic attention: {Path(run).name}")
    for it in items:
        top = sorted(zip(it.attention, it.tokens, strict=True), reverse=True)[:5]
        print(f"{it.label}\t{it.probs[it.label]:.4f}\ttop tokens: {' '.join(t for _, t in top)}")
    print(f"wrote {out} ({len(items)} texts, {time.time() - t0:.2f}s)")


if __name__ == "__main__":
    P.main_guard(main)
