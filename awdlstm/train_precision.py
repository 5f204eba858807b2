"""The precision a `Learner` trains in, for 'auto' on a CPU with native bf16: one training step timed in both.

precision.py decides (`resolve_precision`); what it needs from the Learner is the ratio this file measures:
fp32 seconds / bf16 seconds of one real training step (forward, loss, AR/TAR, backward) on the run's first
batch, taken with `precision.time_bf16_speedup`. The weights, hidden state, random state and loader are left
as they were, so that the run itself is the same whatever was timed; `precision_note` says what was chosen.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from awdlstm import distributed
from awdlstm.loss import ar_tar
from awdlstm.precision import BF16_MIN_SPEEDUP, time_bf16_speedup
from awdlstm.train_checkpoint import rng_state, set_rng_state

if TYPE_CHECKING:
    from awdlstm.train import Learner


def time_bf16_step(learn: Learner) -> float | None:
    """fp32 seconds / bf16 seconds of one training step on `learn`'s first training batch; None when there is
    none. The gradients are cleared afterwards; under torchrun the ranks' mean, so that all agree."""
    state, mode, epoch = rng_state(), learn.model.training, getattr(learn.train_dl, "epoch", None)
    batch = next(iter(learn.train_dl), None)
    if epoch is not None and hasattr(learn.train_dl, "set_epoch"):
        learn.train_dl.set_epoch(epoch)  # an LMLoader moved on to its next epoch's order: back
    if batch is None:
        set_rng_state(state)
        return None
    x, y = learn._to_device(*batch)

    def step(precision):
        learn.precision = precision
        learn.model.reset()
        loss, raw_out, out = learn._forward_loss(x, y, local=True)
        (loss + ar_tar(raw_out, out, learn.cfg.alpha, learn.cfg.beta)).backward()

    learn.model.train()
    try:
        speedup = time_bf16_speedup(step)
    finally:
        for p in learn.model.parameters():
            p.grad = None
        learn.model.reset()
        learn.model.train(mode)
        set_rng_state(state)
    learn.bf16_speedup = (distributed.all_reduce_sum(torch.tensor(speedup)) / distributed.world_size()).item()
    return learn.bf16_speedup


def precision_note(learn: Learner) -> str:
    """The precision `learn` trains in, and for 'auto' on a CPU with native bf16, the timing behind it."""
    if learn.bf16_speedup is None:
        return learn.precision.name
    return (f"{learn.precision.name} (auto: one training step ran {learn.bf16_speedup:.2f}x as fast in bf16 as in "
            f"fp32 on this CPU; bf16 is picked from {BF16_MIN_SPEEDUP}x)")
