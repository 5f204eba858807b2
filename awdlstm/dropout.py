"""The three AWD-LSTM regularisers of chapter 12 ("Regularizing an LSTM"), one per class; chapter 10 scales them
with `drop_mult`.

Merity et al., "Regularizing and Optimizing LSTM Language Models" (2017), and fastai's `awd_lstm.py`:

* `dropout_mask` / `RNNDropout`: variational ("locked") dropout, one mask shared by every time step;
* `WeightDropout`: DropConnect on the LSTM's hidden-to-hidden weights, re-sampled at each forward pass;
* `EmbeddingDropout`: drops whole rows (words) of the embedding matrix.

Each draws from torch's global RNG in the same order and with the same calls as fastai, so with the same
seed the train-mode masks are the same as fastai's (tests/test_model.py checks it against the fixtures).
"""
from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn


def dropout_mask(x: torch.Tensor, sz: tuple[int, ...], p: float) -> torch.Tensor:
    """Dropout mask of shape `sz` (dtype/device of `x`): 0 with probability `p`, else `1/(1-p)`.

    >>> _ = torch.manual_seed(0); dropout_mask(torch.ones(1), (1, 4), 0.5)
    tensor([[0., 0., 2., 0.]])
    """
    return x.new_empty(*sz).bernoulli_(1 - p).div_(1 - p)


class RNNDropout(nn.Module):
    """Variational dropout: one mask per sequence, the same for every time step (the book's `RNNDropout`)."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (bs, sl, n) -> (bs, sl, n)
        if not self.training or self.p == 0.0:
            return x
        return x * dropout_mask(x.detach(), (x.size(0), 1, *x.shape[2:]), self.p)  # mask (bs, 1, n)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class WeightDropout(nn.Module):
    """DropConnect on an LSTM's hidden-to-hidden weights (the book's `WeightDropout`).

    The wrapped `nn.LSTM` keeps its own, undropped `weight_hh_l0` as the trained parameter (the "raw"
    weight). In training each forward pass draws `F.dropout(weight_hh_l0, weight_p)` and runs torch's
    functional LSTM (`torch.lstm`, the op `nn.LSTM.forward` itself calls) with that dropped matrix in its
    place. Nothing inside the `nn.LSTM` is replaced or deleted, unlike fastai's and salesforce's attribute
    swap, which has broken across PyTorch versions. In eval mode the raw weight is used as is.
    """

    def __init__(self, module: nn.LSTM, weight_p: float, layer_names: tuple[str, ...] = ("weight_hh_l0",)):
        super().__init__()
        if not isinstance(module, nn.LSTM):
            raise TypeError(f"WeightDropout wraps an nn.LSTM, got {type(module).__name__}")
        for name in layer_names:
            if name not in module._flat_weights_names:
                raise ValueError(f"WeightDropout: the LSTM has no weight named {name!r}")
        self.module, self.weight_p, self.layer_names = module, weight_p, tuple(layer_names)

    def forward(self, x: torch.Tensor, hx: tuple[torch.Tensor, torch.Tensor]):
        """x (bs, sl, n_in), hx = (h, c) each (n_dir, bs, n_out) -> output (bs, sl, n_out), (h, c)."""
        m = self.module
        drop = self.training and self.weight_p != 0.0
        weights = [
            F.dropout(getattr(m, name), p=self.weight_p, training=True) if drop and name in self.layer_names
            else getattr(m, name)
            for name in m._flat_weights_names
        ]
        args = (m.bias, m.num_layers, float(m.dropout), self.training, m.bidirectional, m.batch_first)
        if x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
            # CPU autocast sends LSTMs to oneDNN, which fails on CPUs without bf16 support: cast by hand
            # and run torch's own kernel instead (gradients still reach the float32 parameters).
            dt = torch.get_autocast_dtype("cpu")
            with torch.autocast("cpu", enabled=False):
                out, h, c = torch.lstm(x.to(dt), tuple(t.to(dt) for t in hx), [w.to(dt) for w in weights], *args)
        elif x.is_cuda and drop:
            # cuDNN warns that the dropped weight is not in the LSTM's flat buffer; that copy is expected.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", category=UserWarning)
                out, h, c = torch.lstm(x, hx, weights, *args)
        else:
            out, h, c = torch.lstm(x, hx, weights, *args)
        return out, (h, c)

    def extra_repr(self) -> str:
        return f"weight_p={self.weight_p}, layer_names={self.layer_names}"


class EmbeddingDropout(nn.Module):
    """Embedding dropout: zero whole rows (words) of the embedding matrix, scale the rest by 1/(1-p).

    Wraps (and shares the weight of) an `nn.Embedding`; the mask is (vocab_sz, 1), drawn once per call.
    """

    def __init__(self, emb: nn.Embedding, embed_p: float):
        super().__init__()
        self.emb, self.embed_p = emb, embed_p

    def forward(self, words: torch.Tensor) -> torch.Tensor:  # (bs, sl) int64 -> (bs, sl, emb_sz)
        w = self.emb.weight  # (vocab_sz, emb_sz)
        if self.training and self.embed_p != 0.0:
            w = w * dropout_mask(w.detach(), (w.size(0), 1), self.embed_p)
        pad = self.emb.padding_idx if self.emb.padding_idx is not None else -1
        return F.embedding(words, w, pad, self.emb.max_norm, self.emb.norm_type,
                           self.emb.scale_grad_by_freq, self.emb.sparse)

    def extra_repr(self) -> str:
        return f"embed_p={self.embed_p}"
