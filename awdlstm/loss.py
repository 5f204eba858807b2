"""The losses of the training loop: cross-entropy over every position (the language model of chapters 10 and
12), and the AWD-LSTM's activation regularisation (chapter 12, "Activation Regularization and Temporal
Activation Regularization": AR and TAR, Merity et al. 2017; fastai's `RNNRegularizer`), added to the loss of
every training batch."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def ar_tar(raw_out: torch.Tensor, out: torch.Tensor, alpha: float, beta: float) -> torch.Tensor:
    """Activation regularisation (AR, on the dropped-out output) + temporal AR (TAR, on the raw output).

    As fastai's `RNNRegularizer`: means over all elements, in fp32; TAR is skipped when the *batch* dim is 1.
    """
    reg = out.new_zeros((), dtype=torch.float32)
    if alpha:
        reg = reg + alpha * out.float().pow(2).mean()
    if beta and raw_out.shape[0] > 1:
        reg = reg + beta * (raw_out[:, 1:] - raw_out[:, :-1]).float().pow(2).mean()
    return reg


def flat_cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over all positions, in fp32: logits (..., n_out), targets (...) (fastai's CrossEntropyLossFlat)."""
    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1))
