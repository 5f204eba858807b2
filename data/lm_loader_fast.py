"""The language-model batcher, fast: `FastLMLoader`, the same batches as `lm_loader.LMLoader` (chapter 10).

The plain `LMLoader` builds each epoch's stream, a copy of the whole corpus, then cuts it into rows. This one
never builds the stream: a batch is gathered straight from the one flat id array. For each position of the
batch we find its document with a binary search over the cumulative lengths of the epoch's document order, so
a batch costs O(bs * seq_len * log(n_docs)) whatever the corpus size, the first batch comes at once, and memory
stays one id array (used as is, never copied: it may be memory-mapped) plus a few numbers per document.

    >>> dl = FastLMLoader([[1, 2, 3, 4, 5], [6, 7, 8, 9]], bs=2, seq_len=3, shuffle=False)
    >>> x, y = next(iter(dl))
    >>> x.tolist(), y.tolist()
    ([[1, 2, 3], [5, 6, 7]], [[2, 3, 4], [6, 7, 8]])

Training chooses it explicitly (awdlstm/ulmfit.py); tests/test_lm_loader.py checks that it yields the plain
loader's batches, tensor for tensor, for several bs and seq_len, shuffled or not, forwards and backwards.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from .lm_loader import Docs, LMLoader


class FastLMLoader(LMLoader):
    """`LMLoader` (same arguments, lengths, epochs and seeds) whose batches are gathered, not cut from a stream."""

    def __init__(self, docs: Docs, bs: int = 64, seq_len: int = 72, shuffle: bool = True,
                 backwards: bool = False, seed: int | None = None, rank: int = 0, world_size: int = 1,
                 idxs: np.ndarray | None = None):
        super().__init__(docs, bs, seq_len, shuffle=shuffle, backwards=backwards, seed=seed, rank=rank,
                         world_size=world_size, idxs=idxs)
        starts = np.arange(bs, dtype=np.int64) * self.bl  # (bs,) first stream position of each row
        self._starts = starts[rank::world_size]           # this rank's rows

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = self.epoch_order()
        self.epoch += 1
        # cum[k] = stream position where the k-th document of this epoch starts; cum[-1] = n_tokens
        cum = np.zeros(len(order) + 1, dtype=np.int64)
        np.cumsum(self.lens[order], out=cum[1:])
        for b in range(self.n_batches):
            yield self._batch(b, order, cum)

    def _batch(self, b: int, order: np.ndarray, cum: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        sl = self.last_len if b == self.n_batches - 1 else self.seq_len
        pos = self._starts[:, None] + b * self.seq_len + np.arange(sl + 1)   # (rows, sl+1) stream positions
        k = np.searchsorted(cum, pos, side="right") - 1                      # (rows, sl+1) index into order
        doc = self.docs[order[k]]                                            # (rows, sl+1) index into docs
        within = pos - cum[k]                                                # offset inside that document
        if self.backwards:
            src = self.offsets[doc + 1] - 1 - within
        else:
            src = self.offsets[doc] + within
        txt = torch.from_numpy(self.ids[src].astype(np.int64, copy=False))  # (rows, sl+1)
        return txt[:, :-1].contiguous(), txt[:, 1:].contiguous()              # x, y: (rows, sl)
