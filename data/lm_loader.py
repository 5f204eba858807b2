"""The language-model batcher, as the book builds it (chapter 10, "Putting Our Texts into Batches for a Language Model").

Every epoch the documents are shuffled (their order, never the words inside them) and concatenated into one
stream of ids. The stream is cut into `bs` rows of equal length, each a contiguous mini-stream, and the rows
are read `seq_len` columns at a time; the targets are the same rows shifted by one token. Batch k+1 thus
continues every row exactly where batch k stopped, so the model's hidden state carries from batch to batch.

    >>> dl = LMLoader([[1, 2, 3, 4, 5], [6, 7, 8, 9]], bs=2, seq_len=3, shuffle=False)
    >>> x, y = next(iter(dl))
    >>> x.tolist(), y.tolist()
    ([[1, 2, 3], [5, 6, 7]], [[2, 3, 4], [6, 7, 8]])

This is the plain version: it builds the stream, one copy of the corpus per epoch. `data/lm_loader_fast.py`
gives the same batches without building it (`FastLMLoader`, what training uses), tests/test_lm_loader.py holds
the two to each other and to fastai's `LMDataLoader`.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

Docs = Sequence[Sequence[int]] | tuple[np.ndarray, np.ndarray]


class LMLoader:
    """fastai's `LMDataLoader`: (x, y) batches of shape (bs, seq_len) for language modelling, y = x shifted by one.

    With `shuffle=False` the batches equal fastai's `LMDataLoader(docs, bs, seq_len, shuffle=False)`:
    `bl = ((n_tokens - 1) // bs * bs) // bs` tokens per row, row r of batch b is
    `stream[r*bl + b*seq_len :][:sl]` (`sl = seq_len`, or what is left for the last, shorter batch), and the
    tokens after `bs*bl + 1` are dropped. With `shuffle=True` the order of the documents changes every epoch:
    epoch e uses `epoch_order(e)`, reproducible from `seed` (drawn from torch's global generator when None, so
    `torch.manual_seed` fixes it). Each `iter()` runs the current epoch and then moves to the next one;
    `set_epoch(n)` picks the epoch explicitly. `backwards=True` reverses every document.

    Data parallelism (awdlstm/distributed.py): with `world_size > 1` this process yields only the rows
    `rank::world_size` of every batch, (bs // world_size, sl). The streams are those of one process with batch
    size `bs`, so across ranks every token is read once per epoch, each row keeps its stream (the hidden state
    carry stays right), and the mean of the ranks' gradients is the gradient of the whole batch.

    `idxs` (an index array into `docs`; default all of them, in order) reads only those documents, without
    copying them: the training or validation documents of one `(ids, offsets)` pair, which may be memory-mapped
    (tokenizers/stream.py). The batches equal those of the selected documents copied out (`select_docs`).
    """

    def __init__(self, docs: Docs, bs: int = 64, seq_len: int = 72, shuffle: bool = True,
                 backwards: bool = False, seed: int | None = None, rank: int = 0, world_size: int = 1,
                 idxs: np.ndarray | None = None):
        if bs < 1 or seq_len < 1:
            raise ValueError(f"bs and seq_len must be >= 1, got bs={bs}, seq_len={seq_len}")
        check_shard(bs, rank, world_size)
        self.ids, self.offsets = flatten_docs(docs)           # doc i is ids[offsets[i]:offsets[i+1]]
        n_docs = len(self.offsets) - 1
        self.docs = np.arange(n_docs) if idxs is None else np.asarray(idxs, dtype=np.int64)  # the documents read
        if len(self.docs) and (self.docs.min() < 0 or self.docs.max() >= n_docs):
            raise IndexError(f"idxs must be document indices in [0, {n_docs})")
        self.lens = self.offsets[self.docs + 1] - self.offsets[self.docs]  # (n_docs read,)
        self.bs, self.seq_len, self.shuffle, self.backwards = bs, seq_len, shuffle, backwards
        self.rank, self.world_size = rank, world_size
        self.n_tokens = int(self.lens.sum())
        corpus = (self.n_tokens - 1) // bs * bs               # -1 leaves room for the last target
        self.bl = corpus // bs                                # length of each of the bs mini-streams
        if self.bl < 1:
            raise ValueError(f"corpus of {self.n_tokens} tokens is too small for bs={bs}: "
                             f"need at least bs + 1 = {bs + 1} tokens")
        self.n_batches = self.bl // seq_len + int(self.bl % seq_len != 0)
        self.last_len = self.bl - (self.n_batches - 1) * seq_len
        self.seed = int(torch.randint(0, 2**31 - 1, ()).item()) if seed is None else int(seed)
        self.epoch = 0

    def __len__(self) -> int:
        """Number of batches per epoch (fastai's `len(dl)`)."""
        return self.n_batches

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch the next `iter()` runs (its document order is `epoch_order(epoch)`)."""
        self.epoch = int(epoch)

    def epoch_order(self, epoch: int | None = None) -> np.ndarray:
        """The order in which documents are concatenated in `epoch` (identity when `shuffle=False`)."""
        epoch = self.epoch if epoch is None else epoch
        if not self.shuffle:
            return np.arange(len(self.lens))
        return np.random.default_rng([self.seed, epoch]).permutation(len(self.lens))

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = self.epoch_order()
        self.epoch += 1
        # 1. the documents, in this epoch's order, concatenated into one stream
        docs = [self.ids[self.offsets[i]:self.offsets[i + 1]] for i in self.docs[order].tolist()]
        if self.backwards:
            docs = [d[::-1] for d in docs]
        stream = torch.from_numpy(np.concatenate(docs).astype(np.int64))   # (n_tokens,)
        # 2. cut into bs rows of bl tokens; the targets are the same rows one token later
        n = self.bs * self.bl
        xs = stream[:n].view(self.bs, self.bl)                              # (bs, bl)
        ys = stream[1:n + 1].view(self.bs, self.bl)                         # (bs, bl)
        xs, ys = xs[self.rank::self.world_size], ys[self.rank::self.world_size]   # this process's rows
        # 3. read the rows seq_len columns at a time (the last batch takes what is left)
        for b in range(self.n_batches):
            cols = slice(b * self.seq_len, (b + 1) * self.seq_len)
            yield xs[:, cols].contiguous(), ys[:, cols].contiguous()       # x, y: (bs, sl)


LMDataLoader = LMLoader  # the book's name


def flatten_docs(docs: Docs) -> tuple[np.ndarray, np.ndarray]:
    """Turn `docs` into one flat id array and document offsets (doc i is `ids[offsets[i]:offsets[i+1]]`).

    `docs` is either a list of int sequences (lists, numpy arrays or tensors) or an `(ids, offsets)` pair
    as returned by `awdlstm.tokenizers.corpus.numericalize_all`; the pair is used as is (no copy).

    >>> ids, offsets = flatten_docs([[1, 2, 3], [4, 5]])
    >>> ids.tolist(), offsets.tolist()
    ([1, 2, 3, 4, 5], [0, 3, 5])
    """
    if isinstance(docs, tuple) and len(docs) == 2 and isinstance(docs[0], np.ndarray | torch.Tensor) \
            and isinstance(docs[1], np.ndarray | torch.Tensor) and np.ndim(docs[1]) == 1 and np.ndim(docs[0]) == 1:
        ids, offsets = (np.asarray(a) if isinstance(a, np.ndarray) else a.numpy() for a in docs)
        if not np.issubdtype(ids.dtype, np.integer) or not np.issubdtype(offsets.dtype, np.integer):
            raise TypeError(f"(ids, offsets) must be integer arrays, got {ids.dtype} and {offsets.dtype}")
        if len(offsets) == 0 or offsets[0] != 0 or offsets[-1] != len(ids) or np.any(np.diff(offsets) < 0):
            raise ValueError("offsets must start at 0, never decrease and end at len(ids) "
                             f"(got len(ids)={len(ids)}, offsets[0]={offsets[:1]}, offsets[-1]={offsets[-1:]})")
        return ids, offsets.astype(np.int64, copy=False)
    parts = [np.asarray(d.cpu() if isinstance(d, torch.Tensor) else d, dtype=np.int64).reshape(-1) for d in docs]
    lens = np.array([len(p) for p in parts], dtype=np.int64)
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    ids = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    return ids, offsets


def check_shard(bs: int, rank: int, world_size: int) -> None:
    """A batch of `bs` rows can be shared equally by `world_size` processes, of which this is `rank`."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, world_size), got rank={rank}, world_size={world_size}")
    if bs % world_size:
        raise ValueError(f"the batch size ({bs}) must be a multiple of the number of processes ({world_size})")
