"""The ULMFiT text classifier of chapter 10 ("Training a Text Classifier"): SentenceEncoder + PoolingLinearClassifier.

    tokens (bs, sl), left-padded in bptt chunks (pad_input_chunk, pad_first=True), rows sorted longest first
        -> SentenceEncoder: the AWDLSTM reads bptt tokens at a time, hidden state carried between chunks,
           keeping the outputs of the last max_len tokens and their padding mask  -> (bs, kept, emb_sz)
        -> masked_concat_pool: [last hidden state, max, mean] over non-padding positions  -> (bs, 3*emb_sz)
        -> LinBnDrop blocks (BatchNorm1d -> Dropout -> Linear [-> ReLU])  -> logits (bs, n_class)

Equal to fastai 2.8's `get_text_classifier` given the same weights (tests/test_model.py).
"""
from __future__ import annotations

import torch
from torch import nn

from .model import AWDLSTM, AWDLSTMConfig, clas_config


class SentenceEncoder(nn.Module):
    """Run `module` (an AWDLSTM) over a whole document, `bptt` tokens at a time (the book's `SentenceEncoder`).

    Like fastai, the chunk starting at column i is fed only to its first `real_bs` rows, the rows whose
    column i is not padding: with pad_first chunked padding and rows sorted by decreasing length those
    are exactly the rows whose text has started, and a row that joins later starts from a zero hidden
    state (the AWDLSTM pads its state with zero rows). Only the chunks inside the last `max_len` tokens
    are kept (earlier ones still update the hidden state). Returns (outputs (bs, kept, emb_sz), mask
    (bs, kept) bool, True at padding).

    `whole_chunks=True` is prediction's batch (ClasLoader(whole_chunks=True): every text starts at a chunk
    boundary and ends in the last chunk). Then each row keeps the chunks within `max_len` of its own text's
    end (the others are masked), so each document is pooled as it is alone in training's batch of one; the
    default keeps fastai's rule, the chunks within `max_len` of the batch's end, the same for every row.
    """

    def __init__(self, bptt: int, module: AWDLSTM, pad_idx: int = 1, max_len: int | None = None):
        super().__init__()
        if bptt < 1:
            raise ValueError(f"SentenceEncoder: bptt must be >= 1, got {bptt}")
        if max_len is not None and max_len < bptt:
            raise ValueError(f"SentenceEncoder: max_len ({max_len}) must be >= bptt ({bptt})")
        self.bptt, self.module, self.pad_idx, self.max_len = bptt, module, pad_idx, max_len

    def reset(self) -> None:
        """Zero the AWDLSTM's hidden state (done at the start of every batch anyway)."""
        self.module.reset()

    def forward(self, x: torch.Tensor, whole_chunks: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        if x.dim() != 2:
            raise ValueError(f"SentenceEncoder expects token ids of shape (bs, seq_len), got {tuple(x.shape)}")
        bs, sl = x.shape
        self.reset()  # every document starts from a zero state
        mask = x == self.pad_idx  # (bs, sl)
        real_bss = (~mask[:, 0:sl:self.bptt]).sum(0).tolist()  # rows fed at each chunk start
        outs, masks = [], []
        for k, i in enumerate(range(0, sl, self.bptt)):
            j = min(i + self.bptt, sl)
            if real_bss[k] > 0:
                o = self.module(x[: real_bss[k], i:j])  # (real_bs, j-i, emb_sz)
            else:  # no row has started: nothing to read, the state stays zero
                self.module.reset()
                o = self.module.encoder.weight.new_zeros(0, j - i, self.module.emb_sz)
            if self.max_len is None or whole_chunks or sl - i <= self.max_len:
                if o.size(0) < bs:  # rows not fed get zero outputs (their mask is True there)
                    o = torch.cat([o, o.new_zeros(bs - o.size(0), *o.shape[1:])])
                outs.append(o)
                masks.append(mask[:, i:j])
        out, mask = torch.cat(outs, dim=1), torch.cat(masks, dim=1)  # (bs, kept, emb_sz), (bs, kept)
        if whole_chunks and self.max_len is not None:  # each row: the chunks within max_len of its text's end
            end = sl - (~mask).flip(1).int().argmax(1)  # (bs,) one past each row's last text token
            chunk = torch.arange(sl, device=x.device) // self.bptt * self.bptt  # (sl,) start of each column's chunk
            mask = mask | (end[:, None] - chunk[None, :] > self.max_len)
        return out, mask


def masked_concat_pool(output: torch.Tensor, mask: torch.Tensor, bptt: int) -> torch.Tensor:
    """Concat pooling: [last hidden state, max pool, mean pool] over the non-padding positions.

    output (bs, sl, n), mask (bs, sl) True at padding -> (bs, 3n). "Last" is `output[i, -last_lens[i]-1]`
    where last_lens counts the padding in the last bptt columns: the remainder padding that pad_first
    chunking puts at the end of a row.
    """
    lens = output.shape[1] - mask.long().sum(dim=1)  # (bs,) non-pad positions
    last_lens = mask[:, -bptt:].long().sum(dim=1)  # (bs,) trailing padding
    avg_pool = output.masked_fill(mask[:, :, None], 0).sum(dim=1) / lens.to(output.dtype)[:, None]
    max_pool = output.masked_fill(mask[:, :, None], -float("inf")).max(dim=1)[0]
    last = output[torch.arange(output.size(0), device=output.device), -last_lens - 1]  # (bs, n)
    return torch.cat([last, max_pool, avg_pool], 1)


def batchnorm_1d(nf: int) -> nn.BatchNorm1d:
    """BatchNorm1d initialised as fastai does: weight 1, bias 1e-3."""
    bn = nn.BatchNorm1d(nf)
    with torch.no_grad():
        bn.bias.fill_(1e-3)
        bn.weight.fill_(1.0)
    return bn


class LinBnDrop(nn.Sequential):
    """BatchNorm1d -> Dropout (left out when p == 0) -> Linear without bias [-> ReLU] (fastai's `LinBnDrop`)."""

    def __init__(self, n_in: int, n_out: int, p: float = 0.0, relu: bool = False):
        layers: list[nn.Module] = [batchnorm_1d(n_in)]
        if p != 0:
            layers.append(nn.Dropout(p))
        layers.append(nn.Linear(n_in, n_out, bias=False))
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class PoolingLinearClassifier(nn.Module):
    """The classifier head: masked concat pooling, then LinBnDrop blocks (the book's `PoolingLinearClassifier`).

    dims = [3*emb_sz, *lin_ftrs, n_class], one dropout probability per block in ps.
    forward((out, mask)) -> (logits (bs, n_class), out, out), like fastai (AR/TAR see the encoder output).
    """

    def __init__(self, dims: list[int], ps: list[float], bptt: int):
        super().__init__()
        if len(ps) != len(dims) - 1:
            raise ValueError(f"PoolingLinearClassifier: {len(dims) - 1} layers but {len(ps)} dropout values")
        self.layers = nn.Sequential(*[
            LinBnDrop(i, o, p=p, relu=k < len(dims) - 2) for k, (i, o, p) in enumerate(zip(dims[:-1], dims[1:], ps, strict=True))
        ])
        self.bptt = bptt

    def forward(self, inp: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out, mask = inp  # (bs, sl, emb_sz), (bs, sl)
        x = masked_concat_pool(out, mask, self.bptt)  # (bs, 3*emb_sz)
        return self.layers(x), out, out


class TextClassifier(nn.Module):
    """ULMFiT's classifier (fastai's `get_text_classifier`): `.encoder` (SentenceEncoder) + `.head`.

    forward(x (bs, sl)) -> (logits (bs, n_class), out, out) with out (bs, kept, emb_sz) the encoder output.
    `ps` are the dropouts of the hidden head layers (default 0.1 each); the first block uses `output_p`.
    """

    def __init__(self, vocab_sz: int, n_class: int, cfg: AWDLSTMConfig | None = None,
                 lin_ftrs: list[int] | None = None, ps: list[float] | None = None, bptt: int = 72,
                 max_len: int | None = 72 * 20):
        super().__init__()
        cfg = cfg if cfg is not None else clas_config()
        lin_ftrs = [50] if lin_ftrs is None else list(lin_ftrs)
        ps = [0.1] * len(lin_ftrs) if ps is None else list(ps)
        if len(ps) != len(lin_ftrs):
            raise ValueError(f"TextClassifier: {len(lin_ftrs)} lin_ftrs but {len(ps)} ps")
        self.cfg, self.n_class, self.lin_ftrs, self.ps = cfg, n_class, lin_ftrs, ps
        self.encoder = SentenceEncoder(bptt, AWDLSTM(vocab_sz, cfg), pad_idx=cfg.pad_token, max_len=max_len)
        dims = [cfg.emb_sz * 3, *lin_ftrs, n_class]
        self.head = PoolingLinearClassifier(dims, [cfg.dropouts()["output_p"], *ps], bptt=bptt)

    def forward(self, x: torch.Tensor, whole_chunks: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Tokens (bs, sl), pad_first-chunked, longest row first -> (logits (bs, n_class), out, out).
        `whole_chunks`: a prediction batch, padded to whole chunks (see SentenceEncoder)."""
        return self.head(self.encoder(x, whole_chunks))

    def reset(self) -> None:
        """Zero the encoder's hidden state."""
        self.encoder.reset()

    def param_groups(self) -> list[list[nn.Parameter]]:
        """fastai's `awd_lstm_clas_split`: [embedding], [LSTM 0], ..., [LSTM n-1], [head]."""
        enc = self.encoder.module
        return ([list(enc.encoder.parameters())] + [enc.layer_params(i) for i in range(enc.n_layers)]
                + [list(self.head.parameters())])
