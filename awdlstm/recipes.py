"""The ULMFiT recipes: every number of a training stage in one dataclass, and the presets (chapter 10).

A recipe holds what the book passes to `language_model_learner`, `text_classifier_learner` and
`fit_one_cycle`: sizes, dropout, vocab, batches, epochs and learning rates. `LMRecipe` is stage 2
("Fine-Tuning the Language Model"), `ClasRecipe` stage 3 ("Fine-Tuning the Classifier"); stage 1
(pretraining on WikiText-103) reuses `LMRecipe`. The presets:

* `gpu`: the book's recipe at full size (AWD-LSTM 400/1152/3, mixed precision).
* `cpu`: sized for a laptop-class CPU's quarter of an hour, from random initial weights.
* `cpu-hour`: a 2-core CPU's hour: the `cpu` model with twice its embedding size, trained longer, reading more
  of each review, run forward and backward side by side, one core each (the ensemble: scripts/ensemble.py).
* `tiny`: seconds, for tests and a first look.

Every field is checked when the recipe is made (a negative learning rate or a NaN is an error naming the
field); the scripts turn each field into a flag (`emb_sz` -> `--emb-sz`, see awdlstm/cli.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields


def _f(default, help: str, check: str = "", choices: tuple = ()):
    """A recipe field with its --help text and the range its values must be in.

    `check` is one of: 'pos' (> 0), 'nonneg' (>= 0), 'unit' (0 < x < 1), 'prob' (0 <= x < 1).
    """
    return field(default=default, metadata={"help": help, "check": check, "choices": choices})


_RANGES = {"pos": ("> 0", lambda v: v > 0), "nonneg": (">= 0", lambda v: v >= 0),
           "unit": ("in (0, 1)", lambda v: 0 < v < 1), "prob": ("in [0, 1)", lambda v: 0 <= v < 1)}


def check_value(name: str, value, check: str, choices: tuple = ()) -> None:
    """Raise a ValueError naming the flag (`--name`) when `value` is not a finite number in its range."""
    flag = "--" + name.replace("_", "-")
    if choices:
        if value not in choices:
            raise ValueError(f"{flag} must be one of {', '.join(choices)}, got {value!r}")
        return
    for v in value if isinstance(value, tuple) else (value,):
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"{flag} must be a finite number, got {v}")
        if check:
            what, ok = _RANGES[check]
            if not ok(v):
                raise ValueError(f"{flag} must be {what}, got {v}")


class _Checked:
    """Checks every field of a recipe dataclass against its declared range when it is made."""

    def __post_init__(self):
        for f in fields(self):
            check_value(f.name, getattr(self, f.name), f.metadata.get("check", ""), f.metadata.get("choices", ()))


PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass
class LMRecipe(_Checked):
    """Stage 2 of ULMFiT (chapter 10, "Fine-Tuning the Language Model"); the defaults are the book's."""

    emb_sz: int = _f(400, "embedding size (ignored with --pretrained: the weights decide)", "pos")
    n_hid: int = _f(1152, "hidden size of the LSTM layers but the last", "pos")
    n_layers: int = _f(3, "LSTM layers", "pos")
    drop_mult: float = _f(0.3, "multiplier of all the dropouts", "nonneg")
    min_freq: int = _f(3, "vocab: keep tokens seen at least this often", "pos")
    max_vocab: int = _f(60000, "vocab: at most this many tokens", "pos")
    lm_docs: int = _f(0, "documents the language model reads (random subset; 0 = all)", "nonneg")
    valid_pct: float = _f(0.1, "share of those documents held out for validation", "unit")
    bs: int = _f(128, "batch size", "pos")
    seq_len: int = _f(80, "sequence length (bptt)", "pos")
    frozen_epochs: int = _f(1, "epochs with all but the last group frozen", "nonneg")
    frozen_lr: float = _f(2e-2, "learning rate of the frozen epochs", "pos")
    epochs: int = _f(10, "epochs after unfreezing", "nonneg")
    lr: float = _f(2e-3, "learning rate after unfreezing", "pos")
    wd: float = _f(0.01, "weight decay", "nonneg")
    precision: str = _f("auto", "auto | fp32 | bf16 | fp16 (auto: see awdlstm/precision.py)", choices=PRECISIONS)


@dataclass
class ClasRecipe(_Checked):
    """Stage 3 of ULMFiT (chapter 10, "Fine-Tuning the Classifier"): gradual unfreezing in the book's four
    stages, `epochs[i]` epochs at top learning rate `lrs[i]` each (0 epochs skips a stage); from the second
    stage on the lr is `slice(lr / lr_mult, lr)` (discriminative learning rates). See `gradual_unfreeze`."""

    drop_mult: float = _f(0.5, "multiplier of all the dropouts", "nonneg")
    bs: int = _f(128, "batch size", "pos")
    seq_len: int = _f(72, "bptt of the SentenceEncoder and padding chunk", "pos")
    max_len: int = _f(1440, "the head pools the last max_len tokens (backpropagation reaches only these)", "pos")
    max_tokens: int = _f(0, "cut every document to its first max_tokens tokens (negative: its last -max_tokens, "
                         "where a review's verdict usually is; 0 = whole documents)")
    train_docs: int = _f(0, "training documents (random subset; 0 = all)", "nonneg")
    valid_docs: int = _f(0, "validation documents (random subset; 0 = all)", "nonneg")
    valid_pct: float = _f(0.2, "validation share when the data has no split of its own", "unit")
    epochs: tuple[int, ...] = _f((1, 1, 1, 2), "epochs of the 4 stages: head, +freeze_to(-2), +freeze_to(-3), "
                                 "unfreeze (0 skips a stage)", "nonneg")
    lrs: tuple[float, ...] = _f((2e-2, 1e-2, 5e-3, 1e-3), "top learning rate of each of the 4 stages", "pos")
    lr_mult: float = _f(2.6**4, "discriminative lrs: the first group gets lr / lr_mult", "pos")
    wd: float = _f(0.01, "weight decay", "nonneg")
    precision: str = _f("auto", "auto | fp32 | bf16 | fp16", choices=PRECISIONS)

    def __post_init__(self):
        super().__post_init__()
        for name in ("epochs", "lrs"):
            if len(getattr(self, name)) != 4:
                raise ValueError(f"--{name} needs 4 values, one per stage of gradual unfreezing, got "
                                 f"{len(getattr(self, name))}")
        if sum(self.epochs) == 0:
            raise ValueError("--epochs: every stage has 0 epochs, nothing would be trained")


LM_PRESETS = {
    "gpu": LMRecipe(),  # the book: AWD-LSTM 400/1152/3, bs 128, seq_len 80, 1 + 10 epochs
    # a 2-core CPU's 15 minutes: every review read once by a small model (random weights: nothing to freeze)
    "cpu": LMRecipe(emb_sz=64, n_hid=192, n_layers=2, max_vocab=8000, bs=64, seq_len=72, frozen_epochs=0,
                    epochs=1, lr=1e-2),
    # a 2-core CPU's hour, the forward and the backward model side by side (one core each): twice the `cpu`
    # model's embedding size (the classifier pools the last LSTM layer's output, as wide as the embedding: 128
    # against 64 took the ensemble from 91.58% to 92.62% at seed 42), every review read three times; less
    # dropout than the book's (0.1, fastai's pretraining value: at 0.3 the 64-dim model's train loss stayed above
    # its valid loss)
    "cpu-hour": LMRecipe(emb_sz=128, n_hid=192, n_layers=2, drop_mult=0.1, max_vocab=8000, bs=64, seq_len=72,
                         frozen_epochs=0, epochs=3, lr=1e-2),
    "tiny": LMRecipe(emb_sz=16, n_hid=32, n_layers=2, max_vocab=2000, min_freq=2, lm_docs=40, bs=16, seq_len=16,
                     epochs=1, precision="fp32"),
}
CLAS_PRESETS = {
    "gpu": ClasRecipe(),  # the book's four stages
    # the last 200 tokens of each review (its verdict is usually at the end); a briefly trained encoder needs a
    # high lr: the last stage unfreezes at 1e-2, lr_mult 2.6**2
    "cpu": ClasRecipe(bs=64, max_tokens=-200, max_len=200, epochs=(1, 1, 0, 3), lrs=(2e-2, 1e-2, 1e-2, 1e-2),
                      lr_mult=2.6**2),
    # the last 400 tokens (the whole review for 78% of them), one more unfrozen epoch
    "cpu-hour": ClasRecipe(bs=64, max_tokens=-400, max_len=400, epochs=(1, 1, 0, 4), lrs=(2e-2, 1e-2, 1e-2, 1e-2),
                           lr_mult=2.6**2),
    "tiny": ClasRecipe(bs=8, seq_len=16, max_len=64, max_tokens=64, train_docs=48, valid_docs=24,
                       epochs=(1, 0, 0, 1), lrs=(2e-2, 1e-2, 1e-2, 1e-2), precision="fp32"),
}
# Stage 1 (pretraining from random weights, every layer trained from the start): `gpu` follows fastai's
# WikiText-103 script (examples/train_wt103.py of fastai 1: drop_mult 0.1, wd 0.1, bs 256, bptt 80,
# 12 epochs of one cycle at 1e-2).
PRETRAIN_PRESETS = {
    "gpu": LMRecipe(drop_mult=0.1, wd=0.1, bs=256, seq_len=80, frozen_epochs=0, epochs=12, lr=1e-2),
    "cpu": LMRecipe(emb_sz=64, n_hid=192, n_layers=2, drop_mult=0.1, max_vocab=8000, lm_docs=1500, bs=64,
                    seq_len=72, frozen_epochs=0, epochs=2, lr=1e-2),
    "tiny": LMRecipe(emb_sz=16, n_hid=32, n_layers=2, drop_mult=0.1, max_vocab=2000, min_freq=2, lm_docs=40,
                     bs=16, seq_len=16, frozen_epochs=0, epochs=1, lr=1e-2, precision="fp32"),
}
