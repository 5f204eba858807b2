"""Generation, fast: the one-token step and the inverse-CDF sampler that `generate(..., fast=True)` uses.

`generate.py` is the book's loop: the prompt is read once, then each sampled word is fed alone with
`model(x)`, the hidden state carrying the text so far, and the next word is drawn with `torch.multinomial`.
This file gives the same distribution with two replacements, each tested against its plain twin
(tests/test_generate.py):

* `OneTokenStep`: the LSTM cell of chapter 12 written out for one token on the carried state, its
  matrix-vector products split in two halves so that torch runs them on two cores (`_matvec`);
* `sample_inverse_cdf`: one uniform number and a binary search in the cumulative probabilities, where
  `torch.multinomial` draws one random number per vocab entry.
"""
from __future__ import annotations

import torch
from torch import nn

from .dropout import WeightDropout
from .model import LanguageModel


def _halves(t: torch.Tensor | None) -> torch.Tensor | None:
    """A matrix (rows, cols) or bias (rows,) as two halves of its rows, (2, rows/2, ...) (one block if rows is odd)."""
    if t is None:
        return None
    k = 2 if t.shape[0] % 2 == 0 else 1
    return t.reshape(k, t.shape[0] // k, *t.shape[1:])


def _matvec(w: torch.Tensor, x: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """w @ x + b with w, b from `_halves`: both halves in one bmm, which torch spreads over two cores (a lone
    matrix-vector product runs on one; this step reads every weight once per word, so it is bound by memory)."""
    xs = x.reshape(1, 1, -1).expand(w.shape[0], 1, -1)  # as a row: (x^T w^T) takes torch's fast path
    wt = w.transpose(1, 2)
    y = torch.bmm(xs, wt) if b is None else torch.baddbmm(b.unsqueeze(1), xs, wt)
    return y.reshape(-1)


class OneTokenStep:
    """The language model in eval mode for one token at a time, written out: chapter 12's `LSTMCell`.

    Per layer, gates = W_ih @ x + W_hh @ h + (b_ih + b_hh), split into input, forget, cell and output
    gates (torch's order); c = f*c + i*g, h = o*tanh(c). Then the tied decoder. The dropouts are identities
    in eval mode. Same logits as `model(x)` on the carried state, to float rounding (tests/test_generate.py).
    """

    def __init__(self, model: LanguageModel):
        enc = model.encoder
        self.emb = enc.encoder.weight.detach()
        self.layers = []
        for rnn in enc.rnns:  # views of the weights (no copy): (4*n_out, n_in), (4*n_out, n_out), (4*n_out,)
            m = rnn.module
            self.layers.append((_halves(m.weight_ih_l0.detach()), _halves(m.weight_hh_l0.detach()),
                                _halves((m.bias_ih_l0 + m.bias_hh_l0).detach())))
        dec = model.decoder.decoder
        self.dec_w, self.dec_b = _halves(dec.weight.detach()), _halves(None if dec.bias is None else dec.bias.detach())

    @staticmethod
    def supports(model: nn.Module) -> bool:
        """A float LanguageModel on the CPU made of this project's modules (not an int8 copy, not on a GPU)."""
        if not isinstance(model, LanguageModel) or not isinstance(model.decoder.decoder, nn.Linear):
            return False
        rnns = model.encoder.rnns
        return all(isinstance(r, WeightDropout) and type(r.module) is nn.LSTM and r.module.bias
                   and r.module.weight_ih_l0.dtype == torch.float32 and r.module.weight_ih_l0.device.type == "cpu"
                   for r in rnns)

    def __call__(self, idx: int, state: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        """Token id and the per-layer 1-D states [(h, c), ...] -> logits (vocab,); `state` gets the new states."""
        x = self.emb[idx]
        for k, (w_ih, w_hh, b) in enumerate(self.layers):
            h, c = state[k]
            i, f, g, o = (_matvec(w_ih, x, b) + _matvec(w_hh, h, None)).chunk(4)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            state[k] = (h, c)
            x = h
        return _matvec(self.dec_w, x, self.dec_b)


def fast_step(model: LanguageModel):
    """A function `idx -> logits (vocab,)` that continues from the model's current hidden state with
    `OneTokenStep` (the state is taken from `model.encoder.hidden` and carried inside); None when the model
    is not one `OneTokenStep.supports` (then the caller feeds `model(x)`)."""
    if not OneTokenStep.supports(model) or model.encoder.hidden is None:
        return None
    step = OneTokenStep(model)
    state = [(h.reshape(-1), c.reshape(-1)) for h, c in model.encoder.hidden]
    return lambda idx: step(idx, state)


def sample_inverse_cdf(probs: torch.Tensor, gen: torch.Generator) -> int:
    """One index drawn with probability proportional to `probs` (vocab,), by inverse CDF: one uniform number
    (what `torch.multinomial(probs, 1)` draws, with one random number instead of one per vocab entry)."""
    cdf = probs.double().cumsum(0)
    u = torch.rand((), dtype=torch.float64, generator=gen) * cdf[-1]
    return min(int(torch.searchsorted(cdf, u, right=True)), len(cdf) - 1)
