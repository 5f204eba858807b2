"""The language model's decoder and its loss in one pass: `linear_cross_entropy(x, weight, bias, y)`.

For a language model the tied decoder (`emb_sz x vocab_sz`) and the softmax over the vocab are most of the
work: at emb 128 and a 60,000-word vocab one batch of 64 x 72 tokens has 4,608 x 60,000 logits (1.1 GB
in fp32). Computing them, then log_softmax, then the loss, then the gradient as separate whole-batch
operations reads and writes that array about ten times: the step is bound by memory, not arithmetic.

Here the rows are taken a chunk at a time, into one reused buffer: the chunk's logits give the loss and,
at once, the gradient `softmax - onehot`, which is immediately multiplied into the gradients of the
inputs, the weight and the bias. The softmax is written out as max, subtract, exp, sum, each in place
(faster on a CPU than torch's own `logsumexp` / `softmax` kernels for rows this long: docs/benchmarks.md has the
figures). The logits are never stored; the backward pass only scales the gradients by the incoming one.
Same value and gradients as `F.cross_entropy(F.linear(x, weight, bias), y)` (mean over rows), to float rounding.

`fused_lm_loss(lm, x, y)` is a `LanguageModel`'s training forward with its decoder fused into the loss:
the training loop (`Learner.train_batch`) chooses it in place of `lm(x)` then the cross-entropy.
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
        buf = torch.empty(min(chunk, n), weight.shape[0], dtype=x.dtype, device=x.device)  # reused by every chunk
        for i in range(0, n, chunk):
            xc, yc = x[i:i + chunk], y[i:i + chunk]  # (c, d), (c,)
            c = len(yc)
            p = buf[:c]
            if bias is None:
                torch.mm(xc, weight.t(), out=p)  # logits (c, V)
            else:
                torch.addmm(bias, xc, weight.t(), out=p)
            target = p.gather(1, yc[:, None])  # (c, 1)
            m = p.amax(1, keepdim=True)
            p.sub_(m).exp_()  # exp(logits - max), in place
            s = p.sum(1, keepdim=True)
            total += (m + s.log() - target).sum(dtype=torch.float64)  # logsumexp - logit of the target
            if not grads:
                continue
            p.mul_(1.0 / (n * s))  # softmax / n
            p[torch.arange(c, device=x.device), yc] -= 1.0 / n  # d(mean loss)/d(logits) = (softmax - onehot) / n
            if need_x:
                torch.mm(p, weight, out=grad_x[i:i + c])
            if need_w:
                grad_w.addmm_(p.t(), xc)
            if need_b:
                grad_b += p.sum(0)
        ctx.save_for_backward(*(g for g in (grad_x, grad_w, grad_b) if g is not None))
        ctx.has = (need_x, need_w, need_b)
        return (total / n).to(x.dtype)

    @staticmethod
    def backward(ctx, g):
        saved = iter(ctx.saved_tensors)
        out = [next(saved) * g if has else None for has in ctx.has]
        return out[0], out[1], out[2], None, None


def linear_cross_entropy(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, y: torch.Tensor,
                         chunk: int = 512) -> torch.Tensor:
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


def fused_lm_loss(lm, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A `LanguageModel`'s training forward with the decoder fused into the loss: tokens x (bs, sl), targets
    y (bs, sl) -> (mean cross-entropy, raw_out, dropped_out), the last two as `lm(x)` returns them (for AR/TAR).

    The same steps as `lm(x)` (encoder, output dropout, tied decoder) and `flat_cross_entropy`, with the same
    dropout draws; only the logits are never stored.
    """
    raw_out = lm.encoder(x)  # (bs, sl, emb_sz)
    out = lm.decoder.output_dp(raw_out)
    dec = lm.decoder.decoder  # the Linear tied to the embedding
    return linear_cross_entropy(out, dec.weight, dec.bias, y), raw_out, out
