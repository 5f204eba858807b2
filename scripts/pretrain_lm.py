"""Stage 1 of ULMFiT: pretrain an AWD-LSTM language model on a large general corpus (chapter 10).

    python scripts/pretrain_lm.py                            # WikiText-103 (fastai's copy, downloaded, cached)
    python scripts/pretrain_lm.py --wikitext PATH            # a wikitext-103 folder (train.csv, test.csv)
    python scripts/pretrain_lm.py --folder my_texts/         # any folder of .txt files (or --csv FILE)
    python scripts/finetune_lm.py --pretrained runs/pretrain-...   # stage 2, starting from it

The book starts from a language model pretrained on Wikipedia (`pretrained=True` downloads fastai's WT103
weights); this is the step that makes such weights. It is finetune_lm.py's training from random weights with
every layer trained from the start (no frozen epoch), on a general corpus with its own vocab.
WikiText-103 keeps its own split (test.csv validates); other texts get a random `--valid-pct` split.

Presets: `gpu` follows fastai's WikiText-103 pretraining script (examples/train_wt103.py of fastai 1:
AWD-LSTM 400/1152/3, drop_mult 0.1, wd 0.1, bs 256, bptt 80, 12 epochs of one cycle at 1e-2; about 6 hours
on one Titan RTX by its own account); `cpu` and `tiny` are small enough for a CPU.
"""
from __future__ import annotations

import argparse

import finetune_lm as FT
import pipeline as P
from data import Texts
from data.download import download_wikitext103
from data.sources import read_wikitext

PRETRAIN_PRESETS = {
    "gpu": P.LMRecipe(drop_mult=0.1, wd=0.1, bs=256, seq_len=80, frozen_epochs=0, epochs=12, lr=1e-2),
    "cpu": P.LMRecipe(emb_sz=64, n_hid=192, n_layers=2, drop_mult=0.1, max_vocab=8000, lm_docs=1500, bs=64,
                      seq_len=72, frozen_epochs=0, epochs=2, lr=1e-2),
    "tiny": P.LMRecipe(emb_sz=16, n_hid=32, n_layers=2, drop_mult=0.1, max_vocab=2000, min_freq=2, lm_docs=40,
                       bs=16, seq_len=16, frozen_epochs=0, epochs=1, lr=1e-2, precision="fp32"),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = FT.lm_parser("pretrain_lm.py", __doc__, PRETRAIN_PRESETS, "The history of",
                      source="WikiText-103, see --wikitext")
    ap.add_argument("--wikitext", default=None, metavar="PATH",
                    help="a wikitext-103 folder (train.csv, test.csv); the default source, downloaded when not given")
    return ap.parse_args(argv)


def read_texts(args: argparse.Namespace) -> tuple[Texts, bool]:
    """--csv / --folder: those texts (random split); else WikiText-103 with its own split."""
    if args.csv or args.folder:
        return P.read_source(args, labelled=False), False
    path = args.wikitext or download_wikitext103(progress=not args.quiet)
    train, valid = read_wikitext(path)
    if not train or not valid:
        raise ValueError(f"--wikitext {path}: {len(train)} training and {len(valid)} validation articles; "
                         "both are needed")
    names = [f"train.csv:{i}" for i in range(len(train))] + [f"test.csv:{i}" for i in range(len(valid))]
    return Texts(train + valid, None, names, [False] * len(train) + [True] * len(valid)), True


def main(argv: list[str] | None = None) -> None:
    FT.run_lm(parse_args(argv), "pretrain_lm", "pretrain", PRETRAIN_PRESETS, read_texts)


if __name__ == "__main__":
    P.main_guard(main)
