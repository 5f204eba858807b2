"""Stage 2 of ULMFiT: fine-tune an AWD-LSTM language model on the target corpus (chapter 10).

    python scripts/finetune_lm.py                        # the embedded IMDb corpus, preset by device
    python scripts/finetune_lm.py --preset gpu --pretrained wt103
    python scripts/finetune_lm.py --csv my.csv --lm-docs 5000 --epochs 3 --run-dir runs/my-lm
    torchrun --nproc_per_node 4 scripts/finetune_lm.py --preset gpu   # 4 GPUs, each a quarter of every batch

Tokenize the texts (cached), build the vocab (min_freq 3, max_vocab 60,000), start from fastai's WT103 weights
(`--pretrained wt103`, or PATH), our own checkpoint (PATH) or random weights (`none`), train 1 epoch with
all but the last group frozen (lr 2e-2), unfreeze and train more epochs (lr 2e-3), save the model, the
vocab and the encoder into the run folder, and generate a few texts from a prompt. All of it is
`awdlstm.ulmfit.finetune_lm`.
"""
from __future__ import annotations

from awdlstm import cli
from awdlstm.recipes import LM_PRESETS


def main(argv: list[str] | None = None) -> None:
    args = cli.lm_parser("finetune_lm.py", __doc__, LM_PRESETS, "I liked this movie because").parse_args(argv)
    cli.run_lm(args, "finetune_lm", LM_PRESETS)


if __name__ == "__main__":
    cli.main_guard(main)
