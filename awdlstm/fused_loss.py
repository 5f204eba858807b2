"""The language model's decoder and its loss in one pass: `linear_cross_entropy(x, weight, bias, y)`.

For a language model the tied decoder (`emb_sz x vocab_sz`) and the softmax over the vocab are most of the
work: at emb 128 and a 60,000-word vocab one batch of 64 x 72 tokens has 4,608 x 60,000 logits (1.1 GB
in fp32). Computing them, then log_softmax, then the loss, then the gradient as separate whole-batch
operations reads and writes that array about ten times: the step is bound by memory, not arithmetic.

Here the rows are taken a chunk at a time: the chunk's logits (a few MB, resident in the cache) give
the loss and, at once, the gradient `softmax - onehot`, which is immediately multiplied into the
gradients of the inputs, the weight and the bias. The logits are never stored; the backward pass only
scales the gradients by the incoming one. Same value and gradients as
`F.cross_entropy(F.linear(x, weight, bias), y)` (mean over rows), to float rounding.
"""
from __future__ import annotations

import torch


class LinearCrossEntropy(torch.autograd.Function):
    """Autograd function behind `linear_cross_entropy` (gradients computed in the forward pass)."""

    @staticmethod
    def forward(ctx, x, weight, bias, y, chunk):  # x (n, d), weight (V, d), bias (V,) | None, y (n,)
        n = x.shape[0]
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        grads = need_x or need_w or need_b
        grad_x = torch.empty_like(x) if need_x else None
        grad_w = torch.zeros_like(weight) if need_w else None
        grad_b = torch.zeros_like(bias) if need_b else None
        total = torch.zeros((), dtype=torch.float64, device=x.device)
        for i in range(0, n, chunk):
            xc, yc = x[i:i + chunk], y[i:i + chunk]  # (c, d), (c,)
            logits = xc @ weight.t() if bias is None else torch.addmm(bias, xc, weight.t())  # (c, V)
            lse = torch.logsumexp(logits, 1)  # (c,)
            total += (lse - logits.gather(1, yc[:, None]).squeeze(1)).sum(dtype=torch.float64)
            if not grads:
                continue
            probs = logits.sub_(lse[:, None]).exp_()  # softmax, in place: (c, V)
            probs[torch.arange(len(yc), device=x.device), yc] -= 1.0
            probs.mul_(1.0 / n)  # d(mean loss)/d(logits)
            if need_x:
                torch.mm(probs, weight, out=grad_x[i:i + chunk])
            if need_w:
                grad_w.addmm_(probs.t(), xc)
            if need_b:
                grad_b += probs.sum(0)
        ctx.save_for_backward(*(g for g in (grad_x, grad_w, grad_b) if g is not None))
        ctx.has = (need_x, need_w, need_b)
        return (total / n).to(x.dtype)

    @staticmethod
    def backward(ctx, g):
        saved = iter(ctx.saved_tensors)
        out = [next(saved) * g if has else None for has in ctx.has]
        return out[0], out[1], out[2], None, None


def linear_cross_entropy(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, y: torch.Tensor,
                         chunk: int = 256) -> torch.Tensor:
    """Mean cross-entropy of `x @ weight.T + bias` against targets `y`, without storing the logits.

    x (..., d), weight (V, d), bias (V,) or None, y (...) int64 -> scalar. The decoder + loss of the
    language model (fastai's `CrossEntropyLossFlat` after `LinearDecoder`), `chunk` rows at a time.
    """
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    if x.shape[:-1] != y.shape:
        raise ValueError(f"inputs {tuple(x.shape)} and targets {tuple(y.shape)} do not match")
    x2 = x.reshape(-1, x.shape[-1])
    if x2.dtype != weight.dtype:
        x2 = x2.to(weight.dtype)
    return LinearCrossEntropy.apply(x2, weight, bias, y.reshape(-1), chunk)
