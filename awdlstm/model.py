"""The AWD-LSTM encoder and its language model: chapter 12's LSTM language model, regularised as AWD-LSTM.

    tokens (bs, sl) -> Embedding + EmbeddingDropout -> RNNDropout (input_p)
        -> n_layers x [LSTM with WeightDropout -> RNNDropout (hidden_p), not after the last layer]
        -> (bs, sl, emb_sz)                                   # AWDLSTM, the part a classifier reuses
        -> RNNDropout (output_p) -> Linear tied to the embedding -> logits (bs, sl, vocab_sz)   # LinearDecoder

The book builds this network in chapter 12 ("A Language Model from Scratch": "LSTM", "Regularizing an LSTM",
weight tying) and uses it, as fastai's `AWD_LSTM`, in chapter 10 (fine-tuning the language model, the
classifier's encoder). Equal to fastai 2.8's `AWD_LSTM` / `LinearDecoder` / `get_language_model` given the
same weights (tests/test_model.py); built in the same order, so `torch.manual_seed(s)` even gives fastai's
initial weights. Sizes and dropouts: `AWDLSTMConfig` in config.py.
"""
from __future__ import annotations

import torch
from torch import nn

from .config import CLAS_DROPOUTS, AWDLSTMConfig, clas_config, lm_config
from .dropout import EmbeddingDropout, RNNDropout, WeightDropout

__all__ = ["AWDLSTM", "LinearDecoder", "LanguageModel", "Hidden",
           "AWDLSTMConfig", "lm_config", "clas_config", "CLAS_DROPOUTS"]  # the config is re-exported from config.py

Hidden = list[tuple[torch.Tensor, torch.Tensor]]  # per layer (h, c), each (1, bs, n_out_of_layer)


class AWDLSTM(nn.Module):
    """The AWD-LSTM encoder (the book's `AWD_LSTM`): embedding, stacked LSTMs, and their four dropouts.

    The hidden state is kept between calls, detached (truncated backpropagation through time), until
    `reset()`. A call with another batch size pads the kept state with zero rows or slices it, as fastai does.
    """

    initrange = 0.1

    def __init__(self, vocab_sz: int, cfg: AWDLSTMConfig | None = None):
        super().__init__()
        cfg = cfg if cfg is not None else AWDLSTMConfig()
        ps = cfg.dropouts()
        self.cfg, self.vocab_sz = cfg, vocab_sz
        self.emb_sz, self.n_hid, self.n_layers, self.pad_token = cfg.emb_sz, cfg.n_hid, cfg.n_layers, cfg.pad_token
        # Construction order = fastai's, so the same seed gives the same initial weights.
        self.encoder = nn.Embedding(vocab_sz, cfg.emb_sz, padding_idx=cfg.pad_token)
        self.encoder_dp = EmbeddingDropout(self.encoder, ps["embed_p"])
        self.rnns = nn.ModuleList([
            WeightDropout(nn.LSTM(self._n_in(i), self._n_out(i), 1, batch_first=True), ps["weight_p"])
            for i in range(cfg.n_layers)
        ])
        with torch.no_grad():
            self.encoder.weight.uniform_(-self.initrange, self.initrange)  # padding row included, like fastai
        self.input_dp = RNNDropout(ps["input_p"])
        self.hidden_dps = nn.ModuleList([RNNDropout(ps["hidden_p"]) for _ in range(cfg.n_layers)])
        self.hidden: Hidden | None = None  # None = zeros at the next call

    def _n_in(self, i: int) -> int:
        return self.emb_sz if i == 0 else self.n_hid

    def _n_out(self, i: int) -> int:
        return self.emb_sz if i == self.n_layers - 1 else self.n_hid  # last layer feeds the tied decoder

    def reset(self) -> None:
        """Forget the hidden state: the next call starts from zeros (fastai's `reset`)."""
        self.hidden = None

    def _hidden_for(self, x: torch.Tensor) -> Hidden:
        """The kept state resized to x's batch (zero rows added, or rows sliced off), on x's device."""
        bs, dtype = x.size(0), self.encoder.weight.dtype
        hidden = []
        for i in range(self.n_layers):
            if self.hidden is None:
                z = torch.zeros(1, bs, self._n_out(i), device=x.device, dtype=dtype)
                hidden.append((z, z))
                continue
            hc = []
            for t in self.hidden[i]:
                t = t.to(x.device)
                if t.size(1) < bs:
                    t = torch.cat([t, t.new_zeros(1, bs - t.size(1), t.size(2))], dim=1)
                elif t.size(1) > bs:
                    t = t[:, :bs].contiguous()
                hc.append(t)
            hidden.append((hc[0], hc[1]))
        return hidden

    def forward(self, x: torch.Tensor, return_all: bool = False, from_embeds: bool = False):
        """Tokens (bs, sl) int64 -> last layer's output (bs, sl, emb_sz).

        With `return_all=True` also returns the per-layer LSTM outputs and the outputs after each
        hidden dropout (the last layer's entry is its raw output), as two lists. With `from_embeds=True`
        x is already embedded, (bs, sl, emb_sz), and skips the embedding and its dropout (fastai's
        `from_embeds`; intrinsic attention differentiates with respect to it).
        """
        if x.dim() != (3 if from_embeds else 2):
            want = "embeddings of shape (bs, seq_len, emb_sz)" if from_embeds else "token ids of shape (bs, seq_len)"
            raise ValueError(f"AWDLSTM expects {want}, got {tuple(x.shape)}")
        hidden = self._hidden_for(x)
        out = self.input_dp(x if from_embeds else self.encoder_dp(x))  # (bs, sl, emb_sz)
        new_hidden, raw_outs, outs = [], [], []
        for i, (rnn, hid_dp) in enumerate(zip(self.rnns, self.hidden_dps, strict=True)):
            out, (h, c) = rnn(out, hidden[i])  # (bs, sl, n_out(i)); h, c (1, bs, n_out(i))
            new_hidden.append((h.detach().to(hidden[i][0].dtype), c.detach().to(hidden[i][1].dtype)))
            raw_outs.append(out)
            if i != self.n_layers - 1:
                out = hid_dp(out)
            outs.append(out)
        self.hidden = new_hidden
        return (out, raw_outs, outs) if return_all else out

    def layer_params(self, i: int) -> list[nn.Parameter]:
        """LSTM layer `i`'s parameters in fastai's order (raw hidden weight first, as `WeightDropout` lists it)."""
        m = self.rnns[i].module
        first = [getattr(m, n) for n in self.rnns[i].layer_names]
        return first + [p for p in m.parameters() if all(p is not q for q in first)]


class LinearDecoder(nn.Module):
    """The language model's head: output dropout, then a linear layer tied to the embedding (`LinearDecoder`)."""

    initrange = 0.1

    def __init__(self, n_out: int, n_hid: int, output_p: float = 0.1, tie_encoder: nn.Embedding | None = None,
                 bias: bool = True):
        super().__init__()
        self.decoder = nn.Linear(n_hid, n_out, bias=bias)
        with torch.no_grad():
            self.decoder.weight.uniform_(-self.initrange, self.initrange)
            if bias:
                self.decoder.bias.zero_()
        self.output_dp = RNNDropout(output_p)
        if tie_encoder is not None:
            self.decoder.weight = tie_encoder.weight  # weight tying: one matrix for input and output words

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (bs, sl, n_hid) -> (logits (bs, sl, n_out), x, dropped x)."""
        dropped = self.output_dp(x)
        return self.decoder(dropped), x, dropped


class LanguageModel(nn.Module):
    """AWD-LSTM language model: `AWDLSTM` encoder + `LinearDecoder` (fastai's `get_language_model`).

    forward(x (bs, sl)) -> (logits (bs, sl, vocab_sz), raw_out, dropped_out), the last two (bs, sl, emb_sz)
    being the last layer's output before and after the output dropout: what AR and TAR need.
    """

    def __init__(self, vocab_sz: int, cfg: AWDLSTMConfig | None = None):
        super().__init__()
        cfg = cfg if cfg is not None else lm_config()
        self.cfg = cfg
        self.encoder = AWDLSTM(vocab_sz, cfg)
        tie = self.encoder.encoder if cfg.tie_weights else None
        self.decoder = LinearDecoder(vocab_sz, cfg.emb_sz, cfg.dropouts()["output_p"], tie_encoder=tie,
                                     bias=cfg.out_bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Tokens (bs, sl) -> (logits (bs, sl, vocab_sz), raw_out (bs, sl, emb_sz), dropped_out (bs, sl, emb_sz)).

        The encoder, then the decoder, as the book. (Training may instead fuse the decoder with the loss so that
        the logits are never stored: `fused_loss.fused_lm_loss`, chosen by the training loop.)
        """
        return self.decoder(self.encoder(x))

    def reset(self) -> None:
        """Zero the encoder's hidden state (start of a new text)."""
        self.encoder.reset()

    def param_groups(self) -> list[list[nn.Parameter]]:
        """fastai's `awd_lstm_lm_split`: one group per LSTM layer, then embedding + decoder (tied weight once)."""
        groups = [self.encoder.layer_params(i) for i in range(self.encoder.n_layers)]
        last: list[nn.Parameter] = []
        for p in [*self.encoder.encoder.parameters(), *self.decoder.parameters()]:
            if all(p is not q for q in last):
                last.append(p)
        return groups + [last]
