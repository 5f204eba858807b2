"""Classify texts with a trained classifier: the label and the probability of every class.

    python scripts/predict.py "A wonderful film." "Two hours I will never get back."
    python scripts/predict.py --files review1.txt review2.txt
    cat reviews.txt | python scripts/predict.py --json          # one text per line on stdin
    python scripts/predict.py --model runs/clas-fwd --model runs/clas-bwd "Great."   # ensemble: mean probs

The texts are tokenized as in training, batched by length (the ClasLoader's sorted order, little padding)
and the predictions are put back in the input order. Output: one line per text, `label<TAB>p(class)...<TAB>
text` (stderr names the columns), or one JSON object per line with --json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

import pipeline as P
from awdlstm import TextClassifier, load_model
from awdlstm.quantize import quantize_int8
from data import ClasLoader, LabelVocab, read_text
from tokenizers.corpus import tokenize_corpus
from tokenizers.vocab import Vocab


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = P.OneLineParser(description=__doc__, prog="predict.py")
    ap.add_argument("texts", nargs="*", help="texts to classify (none, and no --files: read stdin, one per line)")
    ap.add_argument("--files", nargs="+", default=None, help="files to classify, each file one text")
    ap.add_argument("--model", action="append", default=None,
                    help="train_classifier.py's run folder (default: the newest runs/clas-*); give it more than "
                         "once to average the models' probabilities (the book's forward + backward ensemble)")
    ap.add_argument("--bs", type=int, default=64, help="batch size")
    ap.add_argument("--json", action="store_true", help="one JSON object per line")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where to run")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: torch's default)")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "int8"],
                    help="int8: CPU only, the LSTMs in 8-bit integers (awdlstm/quantize.py): about 2x the fp32 speed "
                         "at 400/1152/3, slower for small models; check its agreement with fp32 on your data first "
                         "(scripts/bench.py clas --model RUN)")
    return ap.parse_args(argv)


def read_inputs(args) -> list[str]:
    """The texts from the arguments, the files, or stdin (one per non-empty line)."""
    texts = list(args.texts)
    for f in args.files or []:
        if not Path(f).is_file():
            raise FileNotFoundError(f"{f} does not exist")
        texts.append(read_text(f))
    if not texts and not args.files:
        texts = [line.rstrip("\n") for line in sys.stdin if line.strip()]
    if not texts:
        raise ValueError("no texts to classify (give them as arguments, with --files, or on stdin)")
    return texts


@torch.no_grad()
def predict(model: TextClassifier, vocab: Vocab, texts: list[str], bs: int = 64, backwards: bool = False,
            device: torch.device | str = "cpu", max_tokens: int = 0) -> torch.Tensor:
    """Class probabilities (n_texts, n_class) in the order of `texts` (fastai's `learn.get_preds` on a test set).

    Batches follow the ClasLoader's validation order (longest first, little padding); `restore_order` undoes it.
    `max_tokens > 0` cuts every text to its first tokens, as the classifier was trained.
    """
    corpus = tokenize_corpus(texts, progress=False)
    ids = corpus.subset(np.arange(len(texts)), max_tokens).numericalize(vocab)
    dl = ClasLoader(ids, None, bs=bs, seq_len=model.encoder.bptt, shuffle=False, backwards=backwards)
    model.eval().to(device)
    probs = []
    for x, _ in dl:
        model.reset()
        probs.append(model(x.to(device))[0].float().softmax(-1).cpu())  # (bs, n_class)
    model.reset()
    return dl.restore_order(torch.cat(probs))


def load_classifier(run: str | Path) -> tuple[TextClassifier, Vocab, LabelVocab, dict]:
    """A classifier run folder -> (model, vocab, label vocab, its config.json)."""
    weights = P.run_file(run, "classifier.pt")
    labels = LabelVocab.load(P.run_file(run, "labels.json"))
    config = P.read_config(run)
    model, itos = load_model(weights)
    if not isinstance(model, TextClassifier) or itos is None:
        raise ValueError(f"{weights} is not a classifier saved with its vocab")
    if len(labels) != model.n_class:
        raise ValueError(f"{run}: labels.json has {len(labels)} labels but {weights.name} predicts {model.n_class} "
                         "classes (files from different runs?)")
    return model, Vocab(itos), labels, config


def main(argv=None) -> None:
    args = parse_args(argv)
    device = P.resolve_device(args.device, args.threads)
    if args.precision == "int8" and device.type != "cpu":
        raise ValueError(f"--precision int8 runs on the CPU only (got --device {device.type})")
    runs = args.model or [P.newest_run("clas", "classifier.pt")]
    texts = read_inputs(args)
    t0 = time.time()
    probs, labels = [], None
    for run in runs:
        model, vocab, run_labels, config = load_classifier(run)
        if labels is not None and run_labels.itos != labels.itos:
            raise ValueError(f"{run} predicts the labels {run_labels.itos}, the first model {labels.itos}")
        labels = run_labels
        if args.precision == "int8":
            model = quantize_int8(model)
        probs.append(predict(model, vocab, texts, bs=args.bs, backwards=bool(config.get("backwards")), device=device,
                             max_tokens=config.get("recipe", {}).get("max_tokens", 0)))
    probs = torch.stack(probs).mean(0)  # (n_texts, n_class): the ensemble's mean
    for text, p in zip(texts, probs.tolist(), strict=True):
        label = labels.itos[max(range(len(p)), key=p.__getitem__)]
        if args.json:
            print(json.dumps({"label": label, "probs": dict(zip(labels.itos, p, strict=True)), "text": text}))
        else:
            preview = " ".join(text.split())[:60]
            print("\t".join([label, *(f"{v:.4f}" for v in p), preview]))
    print(f"{len(texts)} texts, {len(runs)} model(s), {time.time() - t0:.2f}s; "
          f"columns: label, p({'), p('.join(labels.itos)}), text", file=sys.stderr)


if __name__ == "__main__":
    P.main_guard(main)
