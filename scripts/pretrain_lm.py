"""Stage 1 of ULMFiT: pretrain an AWD-LSTM language model on a large general corpus (chapter 10).

    python scripts/pretrain_lm.py                            # WikiText-103 (fastai's copy, downloaded, cached)
    python scripts/pretrain_lm.py --wikitext PATH            # a wikitext-103 folder (train.csv, test.csv)
    python scripts/pretrain_lm.py --folder my_texts/         # any folder of .txt files (or --csv FILE)
    python scripts/finetune_lm.py --pretrained runs/pretrain-...   # stage 2, starting from it

The book starts from a language model pretrained on Wikipedia (`pretrained=True` downloads fastai's WT103
weights); this is the step that makes such weights. It is finetune_lm.py's training from random weights with
every layer trained from the start (no frozen epoch), on a general corpus with its own vocab.
WikiText-103 keeps its own split (test.csv validates); other texts get a random `--valid-pct` split.

Presets (awdlstm/recipes.py PRETRAIN_PRESETS): `gpu` follows fastai's WikiText-103 pretraining script
(examples/train_wt103.py of fastai 1); `cpu` and `tiny` are small enough for a CPU.
"""
from __future__ import annotations

from awdlstm import cli
from awdlstm.recipes import PRETRAIN_PRESETS


def main(argv: list[str] | None = None) -> None:
    ap = cli.lm_parser("pretrain_lm.py", __doc__, PRETRAIN_PRESETS, "The history of",
                       source="WikiText-103, see --wikitext")
    ap.add_argument("--wikitext", default=None, metavar="PATH",
                    help="a wikitext-103 folder (train.csv, test.csv); the default source, downloaded when not given")
    cli.run_lm(ap.parse_args(argv), "pretrain_lm", PRETRAIN_PRESETS, default_source="wikitext")


if __name__ == "__main__":
    cli.main_guard(main)
