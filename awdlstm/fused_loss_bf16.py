"""The fused decoder + loss of fused_loss.py with its matrix products in bf16, for CPUs with native bf16.

Same algorithm as `fused_loss.linear_cross_entropy` (read that first): a chunk of rows at a time, the chunk's
logits give the loss and at once the gradient `softmax - onehot`, multiplied straight into the gradients of
the inputs, the weight and the bias; the logits are never stored. What differs:

* the three matrix products per chunk (logits, input gradient, weight gradient) take bf16 operands, where a
  CPU with bf16 matrix units (AVX512-BF16, AMX) multiplies at about twice its fp32 rate; their results come
  back rounded to bf16 (oneDNN accumulates in fp32 inside the product);
* the softmax, the log-sum-exp and the loss are computed in fp32 on each chunk's logits, a few rows at a time
  (`rows`), so that the fp32 copy of those rows stays in the CPU's cache while max, exp, sum and scale go over
  it; the weight and bias gradients are summed over the chunks in fp32.

The result agrees with the fp32 version to bf16 rounding (tests/test_fused_loss.py states the tolerance).
Chosen by the training loop for a language model under bf16 (`Learner`), never silently.
"""
from __future__ import annotations

import math

import torch

LOG2E = math.log2(math.e)


class LinearCrossEntropyBF16(torch.autograd.Function):
    """Autograd function behind `linear_cross_entropy_bf16` (gradients computed in the forward pass)."""

    @staticmethod
    def forward(ctx, x, weight, bias, y, chunk, rows):  # x (n, d), weight (V, d), bias (V,) | None, y (n,)
        n, vocab = x.shape[0], weight.shape[0]
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        grads = need_x or need_w or need_b
        xb, wb = x.to(torch.bfloat16), weight.to(torch.bfloat16)  # the products' operands
        grad_x = torch.empty(x.shape, dtype=torch.bfloat16, device=x.device) if need_x else None
        grad_w = torch.zeros_like(weight, dtype=torch.float32) if need_w else None
        grad_b = torch.zeros_like(bias, dtype=torch.float32) if need_b else None
        gw = torch.empty(weight.shape, dtype=torch.bfloat16, device=x.device) if need_w else None
        total = torch.zeros((), dtype=torch.float64, device=x.device)
        logits = torch.empty(min(chunk, n), vocab, dtype=torch.bfloat16, device=x.device)  # reused by every chunk
        p32 = torch.empty(min(rows, n), vocab, dtype=torch.float32, device=x.device)  # a few rows, in cache
        for i in range(0, n, chunk):
            xc, yc = xb[i:i + chunk], y[i:i + chunk]  # (c, d), (c,)
            c = len(yc)
            lg = logits[:c]
            torch.mm(xc, wb.t(), out=lg)  # bf16 logits (c, V)
            for j in range(0, c, rows):  # softmax and loss in fp32, `rows` rows at a time
                p, yr = p32[:min(rows, c - j)], yc[j:j + rows]
                p.copy_(lg[j:j + rows])  # to fp32
                if bias is not None:
                    p.add_(bias)
                target = p.gather(1, yr[:, None])
                m = p.amax(1, keepdim=True)
                p.sub_(m).mul_(LOG2E).exp2_()  # exp(logits - max), as 2**(log2(e) * ...): exp2 is the faster kernel
                s = p.sum(1, keepdim=True)
                total += (m + s.log() - target).sum(dtype=torch.float64)  # logsumexp - logit of the target
                if not grads:
                    continue
                p.mul_(1.0 / (n * s))  # softmax / n
                p[torch.arange(len(yr), device=x.device), yr] -= 1.0 / n  # (softmax - onehot) / n
                if need_b:
                    grad_b += p.sum(0)
                lg[j:j + rows].copy_(p)  # the gradient of the logits, in bf16, where the logits were
            if not grads:
                continue
            if need_x:
                torch.mm(lg, wb, out=grad_x[i:i + c])
            if need_w:
                torch.mm(lg.t(), xc, out=gw)
                grad_w += gw
        ctx.save_for_backward(*(g for g in (grad_x, grad_w, grad_b) if g is not None))
        ctx.has = (need_x, need_w, need_b)
        ctx.dtypes = (x.dtype, weight.dtype, None if bias is None else bias.dtype)
        return (total / n).float()

    @staticmethod
    def backward(ctx, g):
        saved = iter(ctx.saved_tensors)
        out = [(next(saved) * g).to(dt) if has else None for has, dt in zip(ctx.has, ctx.dtypes, strict=True)]
        return out[0], out[1], out[2], None, None, None


def linear_cross_entropy_bf16(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, y: torch.Tensor,
                              chunk: int = 512, rows: int = 16) -> torch.Tensor:
    """`fused_loss.linear_cross_entropy` with the matrix products in bf16 and the softmax and loss in fp32.

    x (..., d) fp32 or bf16, weight (V, d), bias (V,) or None, y (...) int64 -> fp32 scalar; gradients in the
    dtypes of x, weight and bias. `chunk` rows per product, `rows` rows per fp32 softmax step.
    """
    if chunk < 1 or rows < 1:
        raise ValueError(f"chunk and rows must be >= 1, got {chunk} and {rows}")
    if x.shape[:-1] != y.shape:
        raise ValueError(f"inputs {tuple(x.shape)} and targets {tuple(y.shape)} do not match")
    with torch.autocast(x.device.type, enabled=False):  # the dtypes above are chosen here, not by autocast
        return LinearCrossEntropyBF16.apply(x.reshape(-1, x.shape[-1]), weight, bias, y.reshape(-1), chunk, rows)


def fused_lm_loss_bf16(lm, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`fused_loss.fused_lm_loss` under bf16: the encoder under bf16 autocast (its LSTM products in bf16), then
    the decoder + loss by `linear_cross_entropy_bf16`. Returns (fp32 loss, raw_out, dropped_out)."""
    with torch.autocast(x.device.type, dtype=torch.bfloat16):
        raw_out = lm.encoder(x)  # (bs, sl, emb_sz), bf16
        out = lm.decoder.output_dp(raw_out)
    dec = lm.decoder.decoder
    return linear_cross_entropy_bf16(out, dec.weight, dec.bias, y), raw_out, out

